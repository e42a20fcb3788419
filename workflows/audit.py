"""Audit rows: every transition, edit, decision, send and change of send mode writes one."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from workflows.models import AuditEvent


def record(**fields: Any) -> AuditEvent:
    """Write one audit row (``fields``: event_for's). Call it inside the transaction of the
    change it records."""
    event = event_for(**fields)
    event.save(force_insert=True)
    return event


def event_for(
    *,
    action: str,
    object_type: str,
    object_id: str | int = "",
    workflow_id: int | None = None,
    user: AbstractBaseUser | None = None,
    actor: str | None = None,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """The audit row ``record`` writes, unsaved (a transition writes it in its own statement)."""
    authenticated = user is not None and user.is_authenticated
    return AuditEvent(
        actor=actor or (user.get_username() if authenticated else "system"),
        actor_user=user if authenticated else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        workflow_id=workflow_id,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        details=details or {},
    )
