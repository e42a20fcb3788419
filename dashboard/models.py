"""The dashboard's own rows: each operator's preferences. ApiToken only changes how knox's
tokens are shown."""

from __future__ import annotations

import zoneinfo
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from knox.models import AuthToken


class ApiToken(AuthToken):
    """A knox token as the admin lists it: by its prefix, never its digest."""

    class Meta:
        proxy = True
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.token_key}… ({self.user})"


@cache
def time_zone_names() -> tuple[str, ...]:
    """Every IANA zone name this Python knows, sorted (the console's choice list)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def validate_time_zone(value: str) -> None:
    if value and value not in time_zone_names():
        raise ValidationError(f"{value!r} is not an IANA time zone name (e.g. Europe/Berlin).")


class OperatorPreferences(models.Model):
    """Per operator: the time zone the console (and the admin) show times in."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="operator_preferences",
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        default="",
        validators=[validate_time_zone],
        help_text="IANA name, e.g. Europe/Berlin. Empty: the server's TIME_ZONE.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "operator_preferences"
        verbose_name_plural = "operator preferences"

    def __str__(self) -> str:
        return f"{self.user} · {self.time_zone or settings.TIME_ZONE}"
