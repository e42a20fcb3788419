import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# System checks do not run under gunicorn: refuse to serve in a send mode that is not allowed.
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from config.startup import configuration_error  # noqa: E402
from outreach.gate import enforce_send_mode  # noqa: E402

try:
    enforce_send_mode()
except ImproperlyConfigured as exc:
    raise configuration_error(exc) from None
