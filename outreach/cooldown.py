"""The recipient cooldown: at most one email per recipient per RECIPIENT_COOLDOWN_HOURS.

The guarantee of last resort: whatever identity checks upstream miss (two submissions by one
lead, a replay, a redelivery), a send is claimed only after locking the recipient's row in
``recipient_sends`` in the same transaction as the claim. A concurrent claim to the same address
waits on that lock and then sees the first one's time: never a read-then-write race.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from outreach.gate import normalise_address
from outreach.models import RecipientSend

#: The clock the cooldown reads; tests replace it instead of sleeping.
clock: Callable[[], datetime] = timezone.now


def normalise(recipient: str) -> str:
    """The recipient's row key. Two addresses are the same recipient when the gate reads them
    as the same address (outreach.gate.normalise_address: surrounding whitespace and case
    forgiven); every address the gate lets through has that form. Any other (never sent to)
    keys as written."""
    return normalise_address(recipient) or recipient


@dataclass(frozen=True)
class Held:
    """Why a send waits for a human: "emailed 2 h ago by #812"."""

    last_sent_at: datetime
    workflow_id: int | None
    ago: timedelta

    @property
    def reason(self) -> str:
        who = f" by #{self.workflow_id}" if self.workflow_id else ""
        return (
            f"recipient cooldown: emailed {_humanise(self.ago)} ago{who}; at most one email "
            f"per {settings.RECIPIENT_COOLDOWN_HOURS} h per address, so a human decides"
        )


def _humanise(ago: timedelta) -> str:
    minutes = max(0, int(ago.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def claim(*, recipient: str, workflow_id: int) -> Held | None:
    """Record a send to ``recipient`` by ``workflow_id`` now, or say why it must wait.

    Call inside the transaction that claims the send (it must commit or roll back with it).
    A workflow may re-claim its own address (a retry after a definite refusal).
    """
    if settings.RECIPIENT_COOLDOWN_HOURS == 0:
        return None
    if not connection.in_atomic_block:
        raise RuntimeError("the cooldown claim must share the send claim's transaction")
    address = normalise(recipient)
    now = clock()
    # Create the row if missing (a no-op when present), then lock it: every claimer of this
    # address queues on the same row.
    RecipientSend.objects.bulk_create(
        [RecipientSend(recipient=address, last_sent_at=now, workflow_id=workflow_id)],
        ignore_conflicts=True,
    )
    row = RecipientSend.objects.select_for_update().get(recipient=address)
    window = timedelta(hours=settings.RECIPIENT_COOLDOWN_HOURS)
    if row.workflow_id != workflow_id and now - row.last_sent_at < window:
        return Held(row.last_sent_at, row.workflow_id, now - row.last_sent_at)
    row.last_sent_at, row.workflow_id = now, workflow_id
    row.save(update_fields=["last_sent_at", "workflow"])
    return None


def release(*, recipient: str, workflow_id: int) -> None:
    """The provider definitely refused this workflow's message: it no longer counts."""
    RecipientSend.objects.filter(recipient=normalise(recipient), workflow_id=workflow_id).delete()
