"""Celery tasks of the HubSpot integration."""

from __future__ import annotations

from celery import shared_task

from workflows.hubspot import reconcile


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
