"""What the dashboard, the admin and ``manage.py replay`` say after an operator's action
(issue #15: one wording, whichever screen the action came from). One function per outcome:
``action_text`` for one approval, rejection or send resolution, ``decision_text`` for one row
of a bulk decision, ``replay_text`` for a replay. "#N" is always a workflow's number."""

from __future__ import annotations

from dashboard.texts import gate_text
from outreach.services import RowOutcome
from workflows.services import ReplayResult

#: Refusals and new runs named in a replay's sentence; the rest are counted.
LISTED = 5
_NOT_SENT = "Approved; not sent: "
_SHADOW_ASKED = "draft only, never sent"
_SHADOW_FORCED = "an earlier run sent, or may have sent, an email: draft only, never sent"


def action_text(message: str) -> str:
    """A decision service's outcome message with its gate reason in operator words, and the
    setting behind that reason in brackets: 'Approved, not sent: … (API_ENV=staging)'."""
    if not message.startswith(_NOT_SENT):
        return message
    reason = message.removeprefix(_NOT_SENT).rstrip(".")
    gate = gate_text(reason)
    if reason.startswith("draft-only mode"):
        text = (
            "Approved. Draft-only mode: nothing was sent; the text goes to the rep as a "
            "HubSpot note."
        )
    else:
        text = f"Approved, not sent: {gate.text}"
    return text + (f" ({gate.setting})" if gate.setting else "")


def decision_text(outcome: RowOutcome) -> str:
    """One approval or rejection's outcome in a list of them: '#12: Approved. …'."""
    return f"#{outcome.id}: {action_text(outcome.message)}"


def refused_text(result: ReplayResult, *, listed: int = LISTED) -> str:
    """'; 2 not replayed (#812: already replayed as #901; …)': each refusal, briefly (none
    named when ``listed`` is 0: the caller lists them itself)."""
    if not result.refused:
        return ""
    count = f"; {len(result.refused)} not replayed"
    if not listed:
        return count
    shown = "; ".join(f"#{r.workflow_id}: {r.reason}" for r in result.refused[:listed])
    more = f"; and {len(result.refused) - listed} more" if len(result.refused) > listed else ""
    return f"{count} ({shown}{more})"


def replay_text(
    result: ReplayResult,
    *,
    failed: bool = False,
    shadow_requested: bool = False,
    listed: int = LISTED,
) -> str:
    """'Replaying 2 workflow(s) as #14, #15, 1 in shadow mode (…); 1 not replayed (…).'

    ``failed``: the replay was of every failed match ("Replaying 3 failed workflow(s)");
    ``shadow_requested``: the operator asked for shadow runs (else a shadow run was forced
    because an earlier run may have sent); ``listed``: how many refusals to name."""
    kind = "failed workflow(s)" if failed else "workflow(s)"
    text = f"Replaying {len(result.created)} {kind}"
    if result.created:
        shown = ", ".join(f"#{pk}" for pk in result.created[:LISTED])
        text += f" as {shown}" + (", …" if len(result.created) > LISTED else "")
    if result.shadow:
        why = _SHADOW_ASKED if shadow_requested else _SHADOW_FORCED
        text += f", {len(result.shadow)} in shadow mode ({why})"
    return text + refused_text(result, listed=listed) + "."
