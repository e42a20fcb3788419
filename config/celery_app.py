"""The Celery app. Configuration lives in config/settings.py under the CELERY_ namespace."""

import os
import sys

from celery import Celery
from celery.app import trace
from celery.signals import worker_init

from config.logging import connect_celery_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
if os.path.basename(sys.argv[0]) == "celery":
    # `celery worker`/`celery beat`: a malformed variable stops the process with one line
    # naming it, not a traceback (issue #15). Other importers get the settings' own error.
    from config.startup import require_valid_settings

    require_valid_settings()

app = Celery("leadline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
connect_celery_signals()

# A task's return value can quote lead text (a failure reason quoting an invalid email value):
# the success line says which task finished and how fast, not what it returned (issue #14).
trace.LOG_SUCCESS = "Task %(name)s[%(id)s] succeeded in %(runtime)ss"


@worker_init.connect
def refuse_unsafe_send_mode(**kwargs: object) -> None:
    """A worker must not start in a send mode `manage.py check` would refuse."""
    from django.core.exceptions import ImproperlyConfigured

    from outreach.gate import enforce_send_mode

    try:
        enforce_send_mode()
    except ImproperlyConfigured as exc:
        # Celery logs and swallows exceptions from signal handlers; SystemExit gets through.
        raise SystemExit(f"Refusing to start: {exc}") from None
