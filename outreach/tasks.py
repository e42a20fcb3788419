"""Outreach Celery tasks: ids in, one service call each."""

from __future__ import annotations

from celery import Task, shared_task

from outreach import services
from workflows.hubspot.client import HubSpotPaused, TransientHubSpotError


@shared_task(
    name="outreach.send_email",
    ignore_result=True,  # outcomes live on the draft and in the audit trail; nothing reads these
    bind=True,
    acks_late=True,
    max_retries=services.MAX_SEND_ATTEMPTS,
)
def send_email(self: Task, workflow_id: int) -> str:
    """Send the workflow's email at most once (see services.email_send). MAY SEND.

    Retries, with backoff, only after the provider definitely refused the message (or while
    another worker holds a fresh claim); an unknown outcome is never retried.
    """
    try:
        return services.email_send(workflow_id=workflow_id)
    except services.SendDeferred as exc:
        raise self.retry(exc=exc, countdown=min(300, 30 * 2**self.request.retries)) from exc
    except services.SendInProgress as exc:
        raise self.retry(exc=exc, countdown=exc.retry_in_seconds + 1, max_retries=None) from exc


@shared_task(
    name="outreach.write_crm_note",
    ignore_result=True,
    bind=True,
    acks_late=True,
    autoretry_for=(TransientHubSpotError,),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=5,
)
def write_crm_note(self: Task, workflow_id: int) -> str:
    """Write the final text on the HubSpot contact for the rep. Never sends email."""
    # A retry, or a message redelivered after a worker died, may follow a note that was made.
    redelivered = (self.request.delivery_info or {}).get("redelivered", False)
    retrying = self.request.retries > 0 or bool(redelivered)
    try:
        return services.crm_note_write(workflow_id=workflow_id, retrying=retrying)
    except HubSpotPaused as paused:
        # HubSpot's daily limit: wait for the reset; the wait itself never exhausts the task.
        budget = self.request.retries + (self.max_retries or 0) + 1
        raise self.retry(
            exc=paused, countdown=paused.retry_after or 60, max_retries=budget
        ) from paused
