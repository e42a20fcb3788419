"""Erasing the personal data of drafts (HubSpot privacy deletion; see intake/contacts.py)."""

from __future__ import annotations

from collections.abc import Iterable

from outreach.models import EmailDraft

ERASED = "[erased]"


def drafts_erase(*, workflow_ids: Iterable[int]) -> int:
    """Blank every text of these workflows' drafts that holds lead data: recipient, subject,
    bodies, reasons and errors. The rows stay (decisions, times, send ids); returns how many
    drafts were erased. Idempotent."""
    return EmailDraft.objects.filter(workflow_id__in=list(workflow_ids)).update(
        recipient="",
        subject=ERASED,
        body="",
        body_html="",
        original_subject=ERASED,
        original_body="",
        decision_reason="",
        gate_reason="",
        last_send_error="",
    )


def recipient_sends_erase(*, addresses: Iterable[str]) -> int:
    """Delete the recipient cooldown rows of these addresses (outreach/cooldown.py): the row's
    key is the address itself, so a GDPR erasure cannot leave it. Returns how many went.
    The cooldown of an erased address starts afresh; its open workflows are stopped first."""
    from outreach import cooldown
    from outreach.models import RecipientSend

    keys = {cooldown.normalise(address) for address in addresses if address}
    return RecipientSend.objects.filter(recipient__in=keys).delete()[0] if keys else 0
