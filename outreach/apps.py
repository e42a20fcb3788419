import logging

from celery.signals import worker_ready
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

        # Connected here, not in config/celery_app.py: the Celery app must not import
        # outreach.services (which imports workflows.services, which publishes through the
        # Celery app).
        worker_ready.connect(record_send_mode, dispatch_uid="outreach.record_send_mode")


def record_send_mode(**kwargs: object) -> None:
    """Audit a change of send mode since the last recorded one (one row per change)."""
    from outreach.services import record_mode_change_if_needed

    try:
        record_mode_change_if_needed()
    except Exception:  # the database may still be starting; check_send_mode records it too
        logging.getLogger("leadline.outreach").warning("Could not record the send mode")
