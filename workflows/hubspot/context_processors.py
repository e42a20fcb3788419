"""What every dashboard page says about HubSpot: the daily-limit halt and the Forms poll."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.http import HttpRequest


class HubSpotStatus:
    """Read on first use only: a page that does not show it costs nothing."""

    @cached_property
    def halted_minutes(self) -> int:
        """Minutes left of the daily-limit halt (0: calls go)."""
        from workflows.hubspot.client import calls_halted_for

        seconds = calls_halted_for()
        return int(seconds // 60) + 1 if seconds > 0 else 0

    @cached_property
    def last_reconcile(self) -> Any:
        from workflows.hubspot.reconcile import last_successful_run

        return last_successful_run()


def hubspot_status(request: HttpRequest) -> dict[str, Any]:
    return {"hubspot": HubSpotStatus()}
