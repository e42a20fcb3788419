"""config.urls plus /boom, a view that raises with URL-shaped settings in its frame and message."""

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def boom(request):
    database_url = settings.DATABASE_URL  # a frame variable the debug page would list
    webhook = settings.ALERT_WEBHOOK_URL
    raise RuntimeError(f"forced failure talking to {database_url} and {webhook}")


def suspicious(request):
    raise SuspiciousOperation(f"refused; broker is {settings.CELERY_BROKER_URL}")


urlpatterns = [path("boom", boom), path("suspicious", suspicious), *project_urlpatterns]
