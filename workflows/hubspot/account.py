"""The HubSpot account the token belongs to (GET /account-info/v3/details), remembered in the
hubspot_account table.

HubSpot resets its daily API limit at midnight in the account's time zone ("timeZone": "The
time zone in which the account operates"), so that is when a 429 DAILY's halt ends. The time
zone is learnt ahead of time, never at the 429 (HubSpot then refuses every call): by the
``hubspot.refresh_account`` task (beat, daily, and once when a worker starts) and by every
Forms poll, which reads the account details anyway. HUBSPOT_ACCOUNT_TIME_ZONE, when an
operator sets it, overrides what HubSpot says.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import DatabaseError
from django.utils import timezone

from workflows.hubspot.client import HubSpotClient, kept_client
from workflows.hubspot.models import HubSpotAccount

log = logging.getLogger("leadline.hubspot")

#: The zone used when neither the operator nor HubSpot has named one.
FALLBACK_TIME_ZONE = "UTC"


def account_details(client: HubSpotClient) -> dict[str, Any]:
    """HubSpot's PortalInformationResponse for the token's account (one throttled call)."""
    return client.get("/account-info/v3/details", "account.details")


def remember(details: Mapping[str, Any]) -> HubSpotAccount:
    """Store what account details said (the account's time zone, by portal id)."""
    zone = str(details.get("timeZone") or "")
    if not _is_time_zone(zone):
        log.warning(
            "HubSpot named an account time zone Leadline does not know; the daily limit's "
            "halt will end at midnight %s",
            FALLBACK_TIME_ZONE,
            extra={"time_zone": zone[:64]},
        )
    account, _ = HubSpotAccount.objects.update_or_create(
        portal_id=int(details["portalId"]),
        defaults={"time_zone": zone[:64], "fetched_at": timezone.now()},
    )
    return account


def refresh(client: HubSpotClient | None = None) -> HubSpotAccount | None:
    """Ask HubSpot for the account details and remember them; None without an access token.
    Raises HubSpotError subclasses when the call fails."""
    client = client or kept_client()
    if client is None:
        return None
    return remember(account_details(client))


def daily_reset_time_zone() -> tuple[str, str]:
    """(time zone, where it came from) of the midnight when HubSpot's daily limit resets:
    HUBSPOT_ACCOUNT_TIME_ZONE when set, else the one HubSpot's account details named last,
    else UTC. Never calls HubSpot."""
    from django.conf import settings

    if settings.HUBSPOT_ACCOUNT_TIME_ZONE:
        return settings.HUBSPOT_ACCOUNT_TIME_ZONE, "HUBSPOT_ACCOUNT_TIME_ZONE"
    try:
        account = HubSpotAccount.objects.order_by("-fetched_at").first()
    except DatabaseError:
        account = None
    if account is not None and _is_time_zone(account.time_zone):
        return account.time_zone, f"HubSpot account {account.portal_id}'s details"
    log.warning(
        "The HubSpot account's time zone is not known yet (no usable account details "
        "remembered; hubspot.refresh_account learns it): using %s",
        FALLBACK_TIME_ZONE,
    )
    return FALLBACK_TIME_ZONE, "fallback: the account's is not known yet"


def _is_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return bool(name)
