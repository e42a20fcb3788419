"""What the dashboard and the admin say after an operator's action (issue #15: one wording,
whichever screen the action came from). "#N" is always a workflow's number."""

from __future__ import annotations

from outreach.services import RowOutcome
from workflows.services import ReplayResult


def refused_text(result: ReplayResult) -> str:
    """'; 2 not replayed (#812 already replayed as #901; …)': each refusal, briefly."""
    if not result.refused:
        return ""
    shown = "; ".join(f"#{r.workflow_id} {r.reason}" for r in result.refused[:5])
    more = f"; and {len(result.refused) - 5} more" if len(result.refused) > 5 else ""
    return f"; {len(result.refused)} not replayed ({shown}{more})"


def replay_text(result: ReplayResult) -> str:
    """'Replaying 2 workflow(s) as #14, #15, 1 in shadow mode; 1 not replayed (…).'"""
    text = f"Replaying {len(result.created)} workflow(s)"
    if result.created:
        shown = ", ".join(f"#{pk}" for pk in result.created[:5])
        text += f" as {shown}" + (", …" if len(result.created) > 5 else "")
    text += f", {len(result.shadow)} in shadow mode" if result.shadow else ""
    return text + refused_text(result) + "."


def decision_text(outcome: RowOutcome) -> str:
    """One approval or rejection's outcome, as the inbox lists it: '#12: approved …'."""
    return f"#{outcome.id}: {outcome.message}"
