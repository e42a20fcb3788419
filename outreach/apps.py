from django.apps import AppConfig


class OutreachConfig(AppConfig):
    name = "outreach"
    verbose_name = "Outreach"

    def ready(self) -> None:
        # Registers the send-mode system check. Web (config/wsgi.py) and worker
        # (config/celery_app.py) call outreach.gate.enforce_send_mode() themselves, because
        # system checks do not run under gunicorn or celery.
        from django.conf import settings

        from outreach import checks  # noqa: F401

        if getattr(settings, "OUTREACH_DRAFTER", "template") == "llm":
            # Import the SDK and load the language model once per process (before a prefork
            # worker forks), not inside the first lead's draft step.
            from outreach.llm.drafter import warm_up

            warm_up()
