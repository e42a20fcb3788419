"""Celery tasks of the HubSpot integration."""

from __future__ import annotations

import logging

from celery import shared_task

from workflows.hubspot import names, reconcile

logger = logging.getLogger("leadline.hubspot")


@shared_task(name="hubspot.reconcile_forms", ignore_result=True)
def reconcile_forms() -> dict[str, int] | str:
    """The Forms poll (beat, every HUBSPOT_RECONCILE_MINUTES). Idempotent: submissions already
    stored are not stored again. A failed run is recorded and alerted, not retried: the next
    beat tick starts from the same high-water mark."""
    try:
        result = reconcile.forms_reconcile()
    except reconcile.ReconcileFailed as failed:
        return f"failed: {failed}"
    return {name: result.total(name) for name in ("found", "known", "ingested", "refused")}


@shared_task(name="hubspot.refresh_account", ignore_result=True)
def refresh_account() -> str:
    """Learn the account's time zone from HubSpot's account details (beat, daily; and once
    when a worker starts), so a 429 DAILY's halt ends at midnight there. A failure waits for
    the next run (until then the zone last learnt, or UTC, is used)."""
    from workflows.hubspot.account import refresh
    from workflows.hubspot.client import HubSpotError

    try:
        remembered = refresh()
    except HubSpotError as error:
        logger.warning("account details refresh failed", extra={"error": str(error)})
        return f"failed: {error}"
    return f"time zone {remembered.time_zone}" if remembered else "no access token"


@shared_task(name="hubspot.refresh_names", ignore_result=True)
def refresh_names(kind: str | None = None, ids: list[str] | None = None) -> int:
    """Fetch form/owner names from HubSpot into the cache: the given ids (a page's miss), or
    every id in use (beat, daily). Idempotent; a failure waits for the next request or day."""
    from workflows.hubspot.client import HubSpotError

    wanted = {kind: ids or []} if kind else names.ids_in_use()
    done = 0
    for each_kind, each_ids in wanted.items():
        try:
            done += len(names.names_refresh(kind=each_kind, ids=each_ids))
        except HubSpotError as error:
            logger.warning("name refresh failed", extra={"kind": each_kind, "error": str(error)})
    return done
