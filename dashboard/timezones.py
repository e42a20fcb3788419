"""The operator's time zone: looked up once per session, activated for every request.

The zone lives in ``OperatorPreferences`` (empty: ``settings.TIME_ZONE``). It is read into the
session at login (and on the first request of a session that predates this), so a page costs
no extra query; saving the preference updates the session too.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

SESSION_KEY = "operator_time_zone"


def zone_for(user) -> str:
    """The user's chosen zone name, or TIME_ZONE."""
    from dashboard.models import OperatorPreferences

    chosen = (
        OperatorPreferences.objects.filter(user_id=user.pk)
        .values_list("time_zone", flat=True)
        .first()
    )
    return chosen or settings.TIME_ZONE


def remember(request: HttpRequest, name: str) -> None:
    request.session[SESSION_KEY] = name


@receiver(user_logged_in, dispatch_uid="dashboard.operator_time_zone")
def _on_login(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        remember(request, zone_for(user))


class OperatorTimeZoneMiddleware:
    """Activates the signed-in operator's zone (templates, forms and the admin use it)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            name = request.session.get(SESSION_KEY)
            if not name:
                name = zone_for(user)
                remember(request, name)
            try:
                timezone.activate(zoneinfo.ZoneInfo(name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
