from django.apps import AppConfig


class OutreachConfig(AppConfig):
    name = "outreach"
    verbose_name = "Outreach"

    def ready(self) -> None:
        # Registers the send-mode system check. Web (config/wsgi.py) and worker
        # (config/celery_app.py) call outreach.gate.enforce_send_mode() themselves, because
        # system checks do not run under gunicorn or celery.
        from outreach import checks  # noqa: F401
