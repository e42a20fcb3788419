"""Operator wording for what the gate and the workflow states mean (issue #15).

outreach/gate.py writes its reasons for developers and the audit trail ("draft-only mode
(MODE_DRAFT_ONLY=true): …"); the console shows each as a sentence for an operator, with the
configuration behind it in a tooltip. Reasons are matched by their stable opening words; an
unknown reason is shown as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.utils.formats import date_format
from django.utils.timezone import localtime

HANDS_OVER = "Approving marks it done and hands the text to the rep."


@dataclass(frozen=True)
class GateText:
    #: One or two sentences for the operator.
    text: str
    #: The configuration behind it ("MODE_DRAFT_ONLY=true"), for the tooltip; may be empty.
    setting: str = ""
    #: normal (the expected state), attention (the operator should look), or problem.
    tone: str = "normal"


def _api_env(reason: str) -> str:
    match = re.match(r"API_ENV=(\S+?):", reason)
    return f"API_ENV={match.group(1)}" if match else "API_ENV"


#: (opening words of the gate's reason, builder of the operator text).
_RULES: list[tuple[str, Callable[[str], GateText]]] = [
    (
        "draft-only mode",
        lambda r: GateText(
            f"Draft-only mode: nothing is sent. {HANDS_OVER}", "MODE_DRAFT_ONLY=true"
        ),
    ),
    (
        "API_ENV=",
        lambda r: GateText(
            f"Test environment: email is only sent in production. {HANDS_OVER}", _api_env(r)
        ),
    ),
    (
        "recipient is not on SEND_EMAIL_ALLOWLIST",
        lambda r: GateText(
            f"This address is not on the send allowlist, so nothing is sent to it. {HANDS_OVER}",
            "SEND_EMAIL_ALLOWLIST",
            "attention",
        ),
    ),
    (
        "no valid recipient email",
        lambda r: GateText(
            f"The lead left no usable email address: nothing can be sent. {HANDS_OVER}",
            "",
            "attention",
        ),
    ),
    (
        "send mode: waiting for a human",
        lambda r: GateText(
            "Send mode: approving sends this email to the lead.", "ALLOW_AUTO_SEND=false"
        ),
    ),
    (
        "AI draft (LLM_AUTO_SEND=false)",
        lambda r: GateText(
            "A model wrote this draft, so a person approves it before it is sent.",
            "LLM_AUTO_SEND=false, ALLOW_AUTO_SEND=true",
        ),
    ),
    (
        "approved; production send mode",
        lambda r: GateText("Approved and sent to an allowlisted address.", "MODE_DRAFT_ONLY=false"),
    ),
    (
        "auto-send",
        lambda r: GateText(
            "Sent automatically: auto-send is on and the address is allowlisted.",
            "ALLOW_AUTO_SEND=true",
        ),
    ),
    (
        "shadow replay",
        lambda r: GateText("Shadow replay: drafted to compare, never sent.", ""),
    ),
    (
        "recipient cooldown",
        lambda r: GateText(
            "This address was emailed recently"
            + (f" ({m.group(1)} ago)" if (m := re.search(r"emailed (.+?) ago", r)) else "")
            + ": a person decides whether to send another.",
            "RECIPIENT_COOLDOWN_HOURS",
            "attention",
        ),
    ),
    (
        "gate re-check before sending",
        lambda r: GateText(
            "The send mode changed after approval, so it was not sent; the text went to the "
            "rep instead.",
            r.removeprefix("gate re-check before sending: "),
            "attention",
        ),
    ),
]


def gate_text(reason: str) -> GateText:
    """The operator's reading of a gate reason; the raw reason joins the tooltip."""
    reason = (reason or "").strip()
    if not reason:
        return GateText("")
    for opening, build in _RULES:
        if reason.startswith(opening):
            return build(reason)
    return GateText(reason[:1].upper() + reason[1:], "", "normal")


def time_text(value) -> str:
    """A time as the dashboard and the management commands print it: in the active zone (a
    command's is TIME_ZONE), the zone named: "2026-12-01 20:18 UTC"."""
    return date_format(localtime(value), "Y-m-d H:i T") if value else ""


def outcome_text(workflow, draft) -> str:
    """What happened to a workflow that is over (or waiting on a person), in past tense.

    Empty for states that are still moving (the timeline tells their story).
    """
    status = workflow.status
    who = draft.approver.get_username() if draft and draft.approver_id else ""
    by = f" by {who}" if who else ""
    at = f" at {time_text(draft.decided_at)}" if draft and draft.decided_at else ""
    if status == "rejected":
        why = f": “{draft.decision_reason}”" if draft and draft.decision_reason else ""
        return f"Rejected{by}{at}{why}. Nothing was sent and nothing went to the rep."
    if status == "completed":
        if workflow.shadow:
            return "Shadow replay: the draft was written to compare; nothing was sent."
        if draft is None:
            return "Completed without a draft."
        if draft.decision == "approved":
            return (
                f"Approved{by}{at}. Nothing was sent from Leadline; the text went to the rep "
                "as a note on the HubSpot contact, to send by hand."
            )
        return "Completed without sending; the text went to the rep as a HubSpot note."
    if status == "sent":
        when = f" at {time_text(draft.sent_at)}" if draft and draft.sent_at else ""
        return f"Sent to the lead{when}" + (f", approved{by}." if who else ".")
    if status == "failed":
        step = workflow.get_current_step_display() if workflow.current_step else ""
        where = f" at the step “{step}”" if step else ""
        return (
            f"Stopped{where} after {workflow.attempts} attempt(s); nothing was sent. "
            "Replay starts a new run once the cause is fixed."
        )
    return ""
