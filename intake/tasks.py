"""Celery tasks of intake. Thin: ids in, one service call."""

from __future__ import annotations

from celery import shared_task

from intake import contacts


@shared_task(name="intake.erase_contact", acks_late=True, ignore_result=True)
def erase_contact(contact_id: str) -> str:
    """Erase the contact's personal data again (HubSpot privacy deletion). Scheduled after a
    privacy deletion caught a workflow mid-step: whatever that step wrote afterwards goes too.
    Idempotent."""
    return contacts.contact_erase(contact_id=contact_id, again=True)
