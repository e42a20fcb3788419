"""One line, not a traceback, when the configuration is wrong (issue #15).

Settings refuse a malformed variable with ImproperlyConfigured naming it and the value expected
(config/env.py). Every entry point turns that into one line on stderr and exit status 2:
manage.py, gunicorn's master (config/gunicorn.py), the Celery CLI (config/celery_app.py) and
`make run`'s pre-flight (config/runstate.py). Without this, Django reports it inside a long
traceback that opens with a misleading `KeyError: '<command>'`.
"""

from __future__ import annotations

import os
import sys

CONFIG_ERROR_EXIT = 2


def configuration_error(exc: BaseException) -> SystemExit:
    """The SystemExit that prints ``Configuration error: <message>`` and exits 2."""
    sys.stderr.write(f"Configuration error: {exc}\n")
    sys.stderr.flush()
    return SystemExit(CONFIG_ERROR_EXIT)


def require_valid_settings() -> None:
    """Load config/settings.py now; exit with one line if it refuses the environment."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    try:
        settings.INSTALLED_APPS  # noqa: B018 - imports the settings module
    except ImproperlyConfigured as exc:
        raise configuration_error(exc) from None
