"""Outreach services: the one code path for drafting, gating, approving and sending.

The dashboard, admin, API, management commands and Celery tasks all call these. Status changes
go through ``workflows.transitions.transition``; nothing here writes ``workflows.status``.

Exactly-once sending rests on three rules (see ``email_send``):
1. a send is *claimed* (``send_attempts += 1``) in a committed transaction before the
   provider is called;
2. an attempt is retried only when the provider definitely refused it (``send_failures``);
3. any claimed attempt whose outcome was never recorded is ``send_unknown`` and waits for
   an operator; it is never resent automatically.
"""

from __future__ import annotations

import difflib
import logging
import smtplib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from outreach import cooldown, metrics
from outreach.drafting import DraftContent, DraftContext, Drafter, get_drafter
from outreach.gate import AI_DRAFTER, GateDecision, SendMode, current_mode, decide
from outreach.models import Decision, EmailDraft, GateAction
from workflows import audit
from workflows.models import AuditEvent, Status, Workflow
from workflows.pipeline import contact_pending
from workflows.services import CRM_NOTE_TASK, SEND_TASK, enqueue_on_commit
from workflows.transitions import TransitionResult, last_transition_to, transition

logger = logging.getLogger(__name__)

MAX_SEND_ATTEMPTS = 3
MODE_CHANGED = "send_mode.changed"
# Any 64-bit constant; serialises concurrent mode-change checks on PostgreSQL.
_MODE_LOCK_KEY = 0x4C454144_4D4F4445
APPROVE_PERMISSION = "workflows.approve_workflow"
REJECT_PERMISSION = "workflows.reject_workflow"

#: The provider answered and said no: the message was not accepted, so another try is safe.
DEFINITE_SEND_FAILURES: tuple[type[BaseException], ...] = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPDataError,
    smtplib.SMTPHeloError,
    smtplib.SMTPConnectError,
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPNotSupportedError,
    ConnectionRefusedError,
)


#: Shadow replays look up and draft only: every gate question about them gets this answer.
SHADOW_BLOCK = GateDecision(GateAction.BLOCK, "shadow replay: drafted only, never sent")


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str
    status: str | None = None


class SendDeferred(Exception):
    """The provider refused the message in a way worth retrying; the task retries later."""


class ActionRefused(ValueError):
    """The action does not apply to the workflow in its current state (message says why)."""


#: What a decision service raises when it refuses (besides PermissionDenied): bad input, the
#: wrong state for the action, or no draft to decide on. ``refused`` says how each reads.
REFUSALS = (ValidationError, ValueError, EmailDraft.DoesNotExist)


@dataclass(frozen=True)
class Refused:
    http_status: int
    message: str


def refused(exc: Exception) -> Refused:
    """How a refusal (one of REFUSALS) is reported: one answer for the dashboard, the API
    and the bulk paths, so the same refusal gets the same status and text everywhere."""
    if isinstance(exc, ValidationError):
        return Refused(400, " ".join(exc.messages))
    if isinstance(exc, EmailDraft.DoesNotExist):
        return Refused(409, "This workflow has no draft to decide on.")
    return Refused(409, str(exc))


# --- Drafting and hand-off ------------------------------------------------------------------


class DraftRefused(ValueError):
    """The lead's input cannot be drafted without changing its meaning (message says why)."""


def fit(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, ending in an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def draft_create(
    *,
    workflow_id: int,
    drafter: Drafter | None = None,
    workflow: Workflow | None = None,
    first_try: bool = False,
) -> EmailDraft:
    """Draft the workflow's email once; idempotent (returns the existing draft if any).

    Never sends. The recipient is the lead's email (the submission's, else the CRM contact's
    for event deliveries, which carry none), unvalidated: the gate judges it. ``workflow``:
    the caller's up-to-date object (the pipeline's, with its submission), saving a query.
    ``first_try``: the caller's first attempt at drafting this workflow, so no draft should
    exist and it is not looked for first (a query saved); if one does, the insert's conflict
    still returns it, at the cost of a drafter call.
    """
    existing = None if first_try else EmailDraft.objects.filter(workflow_id=workflow_id).first()
    if existing:
        return existing
    if workflow is None:
        workflow = Workflow.objects.select_related("submission").get(pk=workflow_id)
    drafter = drafter or get_drafter()
    context = _draft_context(workflow)
    limit = EmailDraft._meta.get_field("recipient").max_length
    if len(context.email) > limit:
        # Shortening an address makes it someone else's: refuse, never truncate.
        raise DraftRefused(
            f"the lead's email address is {len(context.email)} characters; an address has at "
            f"most {limit}, so it cannot be drafted to"
        )
    content = drafter.draft(context)
    draft = EmailDraft(
        workflow=workflow, recipient=context.email, idempotency_key=_idempotency_key(workflow.pk)
    )
    apply_content(draft, content, drafter=drafter.name)
    created = audit.event_for(
        action="draft.created",
        object_type="email_draft",
        workflow_id=workflow.pk,
        details={
            "template": content.template,
            "drafter": draft.drafter,
            **({"ai_outcome": content.ai.get("ai_outcome")} if content.ai else {}),
        },
    )
    try:
        audit.insert_with_audit(draft, created)
    except IntegrityError:
        # Another worker drafted the same workflow first; theirs is the draft.
        return EmailDraft.objects.get(workflow_id=workflow_id)
    return draft


#: A draft's record of the model call behind its text (EmailDraft's "AI drafts" fields).
AI_FIELDS = (
    "language",
    "ai_model",
    "ai_prompt_file",
    "ai_prompt_tokens",
    "ai_completion_tokens",
    "ai_guards",
    "ai_outcome",
    "ai_detail",
)


def apply_content(draft: EmailDraft, content: DraftContent, *, drafter: str) -> None:
    """Make what a drafter wrote the draft's text and its original (not saved; the caller
    bumps the version of an existing draft). The one way drafted text lands on a draft, for
    draft_create, draft_refresh and the operator's Regenerate / Use template.

    Lead input (a 300-character company) can make a subject longer than its column; a human
    reads it, so it is shortened with an ellipsis rather than failing. ``drafter`` is the
    drafter's name, used when the content does not say who wrote it (an AI drafter that fell
    back to the template says "template"). When a model was asked, its record replaces the
    last one in full: a field this call did not fill (no tokens after a timeout) is emptied,
    not left from an earlier call. With no model asked, the earlier record stays."""
    subject = fit(content.subject, EmailDraft._meta.get_field("subject").max_length)
    draft.subject = draft.original_subject = subject
    draft.body = draft.original_body = content.body
    draft.body_html = content.body_html
    draft.template = fit(content.template, EmailDraft._meta.get_field("template").max_length)
    draft.drafter = content.drafter or drafter
    if content.ai:
        for name in AI_FIELDS:
            default = EmailDraft._meta.get_field(name).get_default()
            setattr(draft, name, content.ai.get(name, default))


def _same_text(draft: EmailDraft, content: DraftContent) -> bool:
    subject = fit(content.subject, EmailDraft._meta.get_field("subject").max_length)
    return (subject, content.body, content.body_html) == (
        draft.subject,
        draft.body,
        draft.body_html,
    )


def draft_refresh(*, workflow_id: int, drafter: Drafter | None = None) -> bool:
    """Draft a waiting draft again from the workflow's facts as they are now (its contact was
    attached after it was drafted: issue #16), if no one has edited or decided it and the
    text changes. The version goes up, so an approval of the old text is refused as stale.
    Returns whether the draft changed.

    The drafter (with OUTREACH_DRAFTER=llm, a model call of up to LLM_TIMEOUT_SECONDS) runs
    outside any transaction; the draft is then locked and replaced only if it is still the
    one read: pending, unedited, same version."""
    waiting = {"decision": Decision.PENDING, "edited_at__isnull": True}
    read = EmailDraft.objects.filter(workflow_id=workflow_id, **waiting).first()
    if read is None:
        return False
    workflow = Workflow.objects.select_related("submission").get(pk=workflow_id)
    drafter = drafter or get_drafter()
    content = drafter.draft(_draft_context(workflow))
    if _same_text(read, content):
        return False
    with transaction.atomic():
        draft = (
            EmailDraft.objects.select_for_update()
            .filter(pk=read.pk, version=read.version, **waiting)
            .first()
        )
        if draft is None:
            # Decided, edited or replaced while the drafter ran: that stands.
            return False
        apply_content(draft, content, drafter=drafter.name)
        draft.version += 1
        draft.save()
        audit.record(
            action="draft.refreshed",
            object_type="email_draft",
            object_id=draft.pk,
            workflow_id=workflow_id,
            reason="the lead's HubSpot contact was attached after drafting",
            details={"template": content.template, "version": draft.version},
        )
    return True


def _draft_context(workflow: Workflow) -> DraftContext:
    sub = workflow.submission
    contact = workflow.contact or {}
    owner = contact.get("owner") or {}
    return DraftContext(
        email=(sub.email or contact.get("email") or "").strip(),
        first_name=(contact.get("firstname") or sub.first_name or "").strip(),
        last_name=(contact.get("lastname") or sub.last_name or "").strip(),
        company=(contact.get("company") or sub.company or "").strip(),
        message=sub.message or "",
        form_id=sub.form_id or "",
        page_uri=sub.page_uri or "",
        lifecycle_stage=contact.get("lifecyclestage") or "",
        owner_name=(owner.get("name") or "").strip(),
        owner_email=(owner.get("email") or "").strip(),
        owner_signature=(owner.get("signature") or "").strip(),
    )


def _idempotency_key(workflow_id: int) -> str:
    from uuid import uuid4

    return f"wf{workflow_id}-{uuid4().hex}"


def hand_off(
    *,
    workflow_id: int,
    draft: EmailDraft | None = None,
    workflow: Workflow | None = None,
) -> GateDecision:
    """Ask the gate about a ``running`` workflow's draft and move the workflow on.

    SEND -> ``sending`` and the send task is enqueued after commit; HOLD or BLOCK ->
    ``awaiting_approval`` (the reason is stored on the draft); shadow workflows ->
    ``completed``. Idempotent: if the workflow is no longer ``running`` nothing changes.
    Never sends by itself. ``workflow`` and ``draft``: what the caller already holds (the
    pipeline: its workflow and the draft it made in this run), saving their queries; the
    workflow's status is set to the one it moved to. The move, the draft's gate fields and
    their audit rows are one statement on PostgreSQL.
    """
    if workflow is not None:
        shadow = workflow.shadow
    else:
        shadow = Workflow.objects.values_list("shadow", flat=True).get(pk=workflow_id)
    if draft is None:
        draft = EmailDraft.objects.get(workflow_id=workflow_id)
    decision = gate_decision(draft, shadow=shadow, approved=False)
    if shadow:
        to_status = Status.COMPLETED
    else:
        to_status = (
            Status.SENDING if decision.action == GateAction.SEND else Status.AWAITING_APPROVAL
        )
    fields = {**_gate_fields(decision), "updated_at": timezone.now()}
    result = transition(
        workflow_id,
        from_status=Status.RUNNING,
        to_status=to_status,
        reason=decision.reason,
        details={"gate": decision.action.value},
        also=[(EmailDraft.objects.filter(pk=draft.pk), fields)],
        events=_gate_events(draft, decision),
    )
    if not result.won:
        logger.info("hand_off: workflow %s is %s, not running", workflow_id, result.current_status)
        return decision
    _note_gate_decision(draft, decision, fields)
    if workflow is not None:
        workflow.status = to_status
    if to_status == Status.SENDING:
        enqueue_on_commit([workflow_id], task=SEND_TASK)
    return decision


def gate_decision(draft: EmailDraft, *, shadow: bool, approved: bool) -> GateDecision:
    """What the gate says about sending this draft now: shadow replays are never sent; a
    model's draft (drafter "llm") is judged as one."""
    if shadow:
        return SHADOW_BLOCK
    return decide(
        mode=current_mode(),
        recipient=draft.recipient,
        approved=approved,
        ai_drafted=draft.drafter == AI_DRAFTER,
    )


def _store_gate_decision(draft: EmailDraft, decision: GateDecision) -> None:
    """Store a gate decision on ``draft`` with its audit rows (the hand-off writes the same
    fields and rows in its move's statement instead)."""
    fields = _gate_fields(decision)
    _note_gate_decision(draft, decision, fields)
    draft.save(update_fields=[*fields, "updated_at"])
    for event in _gate_events(draft, decision):
        event.save(force_insert=True)


def _gate_fields(decision: GateDecision) -> dict[str, Any]:
    """The draft's columns a gate decision sets."""
    return {"gate_action": decision.action, "gate_reason": decision.reason}


def _note_gate_decision(draft: EmailDraft, decision: GateDecision, fields: dict[str, Any]) -> None:
    """Count the decision, and set ``fields`` (its stored values) on the draft object."""
    metrics.record_gate_decision(decision.action.value, decision.reason)
    for name, value in fields.items():
        setattr(draft, name, value)


def _gate_events(draft: EmailDraft, decision: GateDecision) -> list[AuditEvent]:
    """The audit rows of a gate decision on ``draft``: a block is recorded, the rest are not."""
    if decision.action != GateAction.BLOCK:
        return []
    return [
        audit.event_for(
            action="gate.decision",
            object_type="email_draft",
            object_id=draft.pk,
            workflow_id=draft.workflow_id,
            reason=decision.reason,
            details={"action": decision.action.value},
        )
    ]


# --- Human decisions ------------------------------------------------------------------------


def _require(user: AbstractBaseUser, permission: str) -> None:
    if not user.has_perm(permission):
        raise PermissionDenied(f"{user.get_username()} lacks the permission {permission}.")


class StaleDraft(ActionRefused):
    """The draft changed after the operator loaded it: what they read is not what is there."""


#: Audit actions that change a draft's text (each bumps its version).
TEXT_CHANGES = ("draft.edited", "draft.regenerated", "draft.template_used")


def check_version(draft: EmailDraft, version: int | None) -> None:
    """Raise StaleDraft unless ``version`` is the draft's current one. The human paths
    (dashboard, inbox, admin, API) always pass the version the operator saw; ``None`` is for
    system callers only. Call it with the draft row locked (``select_for_update``)."""
    if version is None or version == draft.version:
        return
    who, at = (draft.edited_by.get_username(), draft.edited_at) if draft.edited_by else ("", None)
    if not who:
        # A Regenerate or "Use template" replaces the text without an edit: its audit row
        # says who and when.
        latest = (
            AuditEvent.objects.filter(
                object_type="email_draft", object_id=str(draft.pk), action__in=TEXT_CHANGES
            )
            .order_by("-created_at", "-pk")
            .values_list("actor", "created_at")
            .first()
        )
        who, at = latest or ("someone", None)
    when = timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S %Z") if at else "an unknown time"
    raise StaleDraft(
        f"Edited by {who} at {when} since you loaded it (you saw version {version}, it is now "
        f"version {draft.version}); review again."
    )


def draft_edit(
    *,
    workflow_id: int,
    user: AbstractBaseUser,
    subject: str,
    body: str,
    version: int | None = None,
) -> EmailDraft:
    """Replace the draft's subject and body while it awaits approval; the original stays.

    Raises PermissionDenied without ``approve_workflow``, ActionRefused once decided,
    StaleDraft when ``version`` is not the draft's current version.
    """
    _require(user, APPROVE_PERMISSION)
    with transaction.atomic():
        draft = EmailDraft.objects.select_for_update().get(workflow_id=workflow_id)
        status = Workflow.objects.values_list("status", flat=True).get(pk=workflow_id)
        if status != Status.AWAITING_APPROVAL:
            raise ActionRefused(_already_message(workflow_id, status))
        check_version(draft, version)
        _apply_edit(draft, user=user, subject=subject, body=body)
    return draft


def _apply_edit(draft: EmailDraft, *, user: AbstractBaseUser, subject: str, body: str) -> None:
    subject = " ".join(subject.split())
    if not subject or not body.strip():
        raise ValidationError("An email needs a subject and a body.")
    limit = EmailDraft._meta.get_field("subject").max_length
    if len(subject) > limit:
        raise ValidationError(
            f"A subject has at most {limit} characters; this one has {len(subject)}."
        )
    if "\x00" in subject or "\x00" in body:
        raise ValidationError("The subject and body cannot contain NUL characters.")
    if (subject, body) == (draft.subject, draft.body):
        return
    summary = _diff_summary(draft.subject, draft.body, subject, body)
    draft.subject, draft.body = subject, body
    # The HTML part was rendered from the original text; a human edit supersedes it.
    draft.body_html = ""
    draft.edited_by, draft.edited_at = user, timezone.now()
    draft.version += 1
    draft.save(
        update_fields=[
            "subject",
            "body",
            "body_html",
            "edited_by",
            "edited_at",
            "version",
            "updated_at",
        ]
    )
    audit.record(
        action="draft.edited",
        object_type="email_draft",
        object_id=draft.pk,
        workflow_id=draft.workflow_id,
        user=user,
        details={**summary, "version": draft.version},
    )


def _diff_summary(old_subject: str, old_body: str, subject: str, body: str) -> dict:
    diff = list(difflib.ndiff(old_body.splitlines(), body.splitlines()))
    return {
        "subject_changed": old_subject != subject,
        "body_lines_added": sum(1 for line in diff if line.startswith("+ ")),
        "body_lines_removed": sum(1 for line in diff if line.startswith("- ")),
        "body_chars": [len(old_body), len(body)],
    }


def workflow_approve(
    *,
    workflow_id: int,
    user: AbstractBaseUser,
    subject: str | None = None,
    body: str | None = None,
    version: int | None = None,
) -> ActionResult:
    """Approve a waiting draft (applying an edit first if given), then ask the gate again.

    SEND -> ``sending`` and the send is enqueued after commit; otherwise -> ``completed`` and
    the final text is written to the HubSpot contact as a note for the rep. A second approval
    (or one racing a rejection) loses and is told who won. Raises PermissionDenied, and
    StaleDraft when ``version`` (what the operator read) is no longer the draft's.
    """
    _require(user, APPROVE_PERMISSION)
    with transaction.atomic():
        draft = EmailDraft.objects.select_for_update().get(workflow_id=workflow_id)
        status, step_log = Workflow.objects.values_list("status", "step_log").get(pk=workflow_id)
        if status == Status.AWAITING_APPROVAL:
            check_version(draft, version)
            if contact_pending(step_log):
                # Drafted from the form before the lead's contact was found (issue #16): its
                # facts may change the draft, or make the lead another's duplicate.
                raise ActionRefused(
                    "The lead's HubSpot contact is still being looked up (a few seconds); "
                    "the draft may change. Reload and approve again."
                )
        won = transition(
            workflow_id,
            from_status=Status.AWAITING_APPROVAL,
            to_status=Status.APPROVED,
            user=user,
            reason="approved",
        )
        if not won:
            return ActionResult(
                False, _already_message(workflow_id, won.current_status), won.current_status
            )
        if subject is not None or body is not None:
            _apply_edit(
                draft,
                user=user,
                subject=draft.subject if subject is None else subject,
                body=draft.body if body is None else body,
            )
        draft.decision, draft.approver, draft.decided_at = Decision.APPROVED, user, timezone.now()
        draft.save(update_fields=["decision", "approver", "decided_at", "updated_at"])

        shadow = Workflow.objects.values_list("shadow", flat=True).get(pk=workflow_id)
        gate = gate_decision(draft, shadow=shadow, approved=True)
        _store_gate_decision(draft, gate)
        if gate.action == GateAction.SEND:
            transition(
                workflow_id,
                from_status=Status.APPROVED,
                to_status=Status.SENDING,
                user=user,
                reason=gate.reason,
            )
            enqueue_on_commit([workflow_id], task=SEND_TASK)
            return ActionResult(True, "Approved; sending.", Status.SENDING)
        transition(
            workflow_id,
            from_status=Status.APPROVED,
            to_status=Status.COMPLETED,
            user=user,
            reason=gate.reason,
        )
        enqueue_on_commit([workflow_id], task=CRM_NOTE_TASK)
        return ActionResult(True, f"Approved; not sent: {gate.reason}.", Status.COMPLETED)


def workflow_reject(
    *, workflow_id: int, user: AbstractBaseUser, reason: str, version: int | None = None
) -> ActionResult:
    """Reject a waiting draft with a reason; nothing is sent. Loses cleanly to a rival decision.

    Raises PermissionDenied without ``reject_workflow``, ValidationError without a reason, and
    StaleDraft when ``version`` (what the operator read) is no longer the draft's.
    """
    _require(user, REJECT_PERMISSION)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the draft is rejected."})
    with transaction.atomic():
        draft = EmailDraft.objects.select_for_update().get(workflow_id=workflow_id)
        status = Workflow.objects.values_list("status", flat=True).get(pk=workflow_id)
        if status == Status.AWAITING_APPROVAL:
            check_version(draft, version)
        won = reject_waiting(workflow_id, reason=reason, user=user, draft=draft)
        if not won:
            return ActionResult(
                False, _already_message(workflow_id, won.current_status), won.current_status
            )
    return ActionResult(True, "Rejected.", Status.REJECTED)


def reject_waiting(
    workflow_id: int,
    *,
    reason: str,
    user: AbstractBaseUser | None = None,
    actor: str | None = None,
    fields: Mapping[str, object] | None = None,
    draft: EmailDraft | None = None,
) -> TransitionResult:
    """Move a waiting workflow to ``rejected`` and record the decision on its draft (decision,
    reason, approver, time), so the two never disagree. No permission check: workflow_reject
    checks the operator's; the system (a contact stopped in HubSpot) passes ``actor`` and no
    user. ``draft``: the draft already locked by the caller; else it is locked here.
    ``fields``: extra workflow columns for the move. Loses (nothing written) to a rival move."""
    with transaction.atomic():
        if draft is None:
            draft = EmailDraft.objects.select_for_update().filter(workflow_id=workflow_id).first()
        won = transition(
            workflow_id,
            from_status=Status.AWAITING_APPROVAL,
            to_status=Status.REJECTED,
            user=user,
            actor=actor,
            reason=reason,
            fields=fields,
        )
        if won and draft is not None:
            draft.decision, draft.decision_reason = Decision.REJECTED, reason
            draft.approver, draft.decided_at = user, timezone.now()
            draft.save(
                update_fields=[
                    "decision",
                    "decision_reason",
                    "approver",
                    "decided_at",
                    "updated_at",
                ]
            )
    return won


@dataclass(frozen=True)
class RowOutcome:
    id: int
    ok: bool
    message: str


def workflows_decide(
    *,
    workflow_ids: Iterable[int],
    user: AbstractBaseUser,
    approve: bool,
    reason: str = "",
    versions: Mapping[int, int] | None = None,
) -> list[RowOutcome]:
    """Approve (as drafted) or reject each workflow, one service call per id, and say how
    each went. The bulk paths (inbox, admin) use this and pass ``versions``: per id, the draft
    version the operator read; a row without one, or whose draft changed since, is refused
    and reported. Raises PermissionDenied at the first refusal: it applies to every row. A row
    that lost a race or had no draft is reported."""
    outcomes = []
    for workflow_id in dict.fromkeys(workflow_ids):
        version = None if versions is None else versions.get(workflow_id)
        if versions is not None and version is None:
            message = "No draft version was sent for this row: reload the page and review again."
            outcomes.append(RowOutcome(workflow_id, False, message))
            continue
        try:
            if approve:
                result = workflow_approve(workflow_id=workflow_id, user=user, version=version)
            else:
                result = workflow_reject(
                    workflow_id=workflow_id, user=user, reason=reason, version=version
                )
        except REFUSALS as exc:
            result = ActionResult(False, refused(exc).message)
        outcomes.append(RowOutcome(workflow_id, result.ok, result.message))
    return outcomes


def _already_message(workflow_id: int, status: str | None) -> str:
    """'Already approved by olivia at …': the decision that beat the caller."""
    events = [
        e
        for e in (last_transition_to(workflow_id, s) for s in (Status.APPROVED, Status.REJECTED))
        if e is not None
    ]
    event = max(events, key=lambda e: (e.created_at, e.id)) if events else None
    if event is None and status:
        event = last_transition_to(workflow_id, status)
    if event is None:
        return f"Already {status}."
    when = timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M:%S %Z")
    return f"Already {event.to_status} by {event.actor} at {when}."


def resolve_unknown_send(
    *, workflow_id: int, user: AbstractBaseUser, sent: bool, note: str
) -> ActionResult:
    """An operator settles a ``send_unknown`` workflow after checking the mailbox/ESP.

    ``sent=True`` -> ``sent``; ``sent=False`` -> ``completed`` and the text goes to the rep as
    a CRM note. Never sends. Raises PermissionDenied and ValidationError (empty note).
    """
    _require(user, APPROVE_PERMISSION)
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": "Say how you established whether the email went out."})
    to_status = Status.SENT if sent else Status.COMPLETED
    with transaction.atomic():
        draft = EmailDraft.objects.select_for_update().get(workflow_id=workflow_id)
        won = transition(
            workflow_id,
            from_status=Status.SEND_UNKNOWN,
            to_status=to_status,
            user=user,
            reason=note,
            details={"resolved_sent": sent},
        )
        if not won:
            return ActionResult(
                False, _already_message(workflow_id, won.current_status), won.current_status
            )
        if sent and draft.sent_at is None:
            draft.sent_at = timezone.now()
            draft.provider_message_id = draft.provider_message_id or message_id_for(draft)
            draft.save(update_fields=["sent_at", "provider_message_id", "updated_at"])
        if not sent:
            enqueue_on_commit([workflow_id], task=CRM_NOTE_TASK)
    return ActionResult(True, f"Marked {to_status}.", to_status)


# --- Sending --------------------------------------------------------------------------------


class SendInProgress(Exception):
    """Another worker claimed this send moments ago; look again once its lease has passed."""

    def __init__(self, retry_in_seconds: float) -> None:
        super().__init__(f"another worker is sending; look again in {retry_in_seconds:.0f}s")
        self.retry_in_seconds = retry_in_seconds


def message_id_for(draft: EmailDraft) -> str:
    """The Message-ID header: the same on every attempt, so providers and inboxes can dedupe."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "leadline.invalid"
    return f"<{draft.idempotency_key}@{domain}>"


def _send_lease() -> timedelta:
    # After the hard task time limit the claiming worker is certainly gone.
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + settings.EMAIL_TIMEOUT)


def email_send(*, workflow_id: int) -> str:
    """Send a ``sending`` workflow's email at most once; returns what happened.

    MAY SEND. Re-checks the gate first. Claims the attempt in a committed transaction, calls
    the provider outside any transaction, then records the outcome. A claimed attempt whose
    outcome is unknown moves the workflow to ``send_unknown`` instead of sending again.
    Raises SendDeferred (retry later) after a transient refusal, SendInProgress while another
    worker holds a fresh claim.
    """
    if connection.in_atomic_block:  # before the claim: a rolled-back claim must not count
        raise RuntimeError("refusing to send inside an open transaction: it could roll back")
    workflow = Workflow.objects.get(pk=workflow_id)
    if workflow.status != Status.SENDING:
        return f"skipped: workflow is {workflow.status}, not sending"
    draft = EmailDraft.objects.get(workflow_id=workflow_id)
    gate = gate_decision(
        draft, shadow=workflow.shadow, approved=draft.decision == Decision.APPROVED
    )
    if gate.action != GateAction.SEND:
        return _stop_before_send(draft, gate)

    draft, skipped = _claim_send(workflow_id)
    if skipped:
        return skipped
    message_id = message_id_for(draft)
    message = EmailMultiAlternatives(
        subject=draft.subject,
        body=draft.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[draft.recipient.strip()],
        headers={"Message-ID": message_id},
    )
    if draft.body_html:
        message.attach_alternative(draft.body_html, "text/html")
    try:
        message.send(fail_silently=False)
    except DEFINITE_SEND_FAILURES as exc:
        metrics.SENDS.labels("refused").inc()
        return _record_definite_failure(workflow_id, exc)
    except Exception as exc:
        # A timeout or disconnect after DATA may still have delivered the message.
        metrics.SENDS.labels("unknown").inc()
        _record_unknown(workflow_id, exc)
        return "send_unknown"
    metrics.SENDS.labels("sent").inc()
    status = getattr(message, "anymail_status", None)
    _record_sent(workflow_id, provider_id=getattr(status, "message_id", None) or message_id)
    return "sent"


def _stop_before_send(draft: EmailDraft, gate: GateDecision) -> str:
    reason = f"gate re-check before sending: {gate.reason}"
    with transaction.atomic():
        won = transition(
            draft.workflow_id, from_status=Status.SENDING, to_status=Status.COMPLETED, reason=reason
        )
        if not won:
            return f"skipped: workflow is {won.current_status}, not sending"
        _store_gate_decision(draft, GateDecision(GateAction.BLOCK, reason))
        enqueue_on_commit([draft.workflow_id], task=CRM_NOTE_TASK)
    return "completed: not sent"


def _claim_send(workflow_id: int) -> tuple[EmailDraft, str]:
    """Lock the draft and commit ``send_attempts += 1``; or say why not to send."""
    with transaction.atomic():
        draft = EmailDraft.objects.select_for_update().get(workflow_id=workflow_id)
        status, shadow = Workflow.objects.values_list("status", "shadow").get(pk=workflow_id)
        if status != Status.SENDING:
            return draft, f"skipped: workflow is {status}, not sending"
        if draft.sent_at is not None:
            return draft, "skipped: already sent"
        now = timezone.now()
        if draft.send_attempts > draft.send_failures:
            claimed = draft.send_claimed_at
            if claimed is not None and now - claimed < _send_lease():
                raise SendInProgress((claimed + _send_lease() - now).total_seconds())
            transition(
                workflow_id,
                from_status=Status.SENDING,
                to_status=Status.SEND_UNKNOWN,
                reason=f"send attempt {draft.send_attempts} never recorded its outcome (the "
                "worker stopped mid-send); check the mail provider, then resolve by hand",
            )
            return draft, "send_unknown"
        held = (
            None if shadow else cooldown.claim(recipient=draft.recipient, workflow_id=workflow_id)
        )
        if held is not None:
            _hold_for_cooldown(draft, held)
            return draft, f"held: {held.reason}"
        draft.send_attempts += 1
        draft.send_claimed_at = now
        draft.save(update_fields=["send_attempts", "send_claimed_at", "updated_at"])
    return draft, ""


def _hold_for_cooldown(draft: EmailDraft, held: cooldown.Held) -> None:
    """Back to a human: the address was emailed inside the cooldown. An earlier approval does
    not carry over; the operator sees why and decides again (or rejects)."""
    transition(
        draft.workflow_id,
        from_status=Status.SENDING,
        to_status=Status.AWAITING_APPROVAL,
        reason=held.reason,
        details={"cooldown_workflow": held.workflow_id},
    )
    draft.decision, draft.approver, draft.decided_at = Decision.PENDING, None, None
    draft.save(update_fields=["decision", "approver", "decided_at", "updated_at"])
    _store_gate_decision(draft, GateDecision(GateAction.HOLD, held.reason))


def _is_permanent(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    code = getattr(exc, "smtp_code", None)
    return isinstance(code, int) and code >= 500


def _record_definite_failure(workflow_id: int, exc: BaseException) -> str:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    with transaction.atomic():
        draft = EmailDraft.objects.select_for_update().get(workflow_id=workflow_id)
        draft.send_failures += 1
        draft.last_send_error = error
        draft.save(update_fields=["send_failures", "last_send_error", "updated_at"])
        permanent = _is_permanent(exc)
        audit.record(
            action="email.send_failed",
            object_type="email_draft",
            object_id=draft.pk,
            workflow_id=workflow_id,
            reason=error,
            details={"attempt": draft.send_attempts, "permanent": permanent},
        )
        if permanent or draft.send_attempts >= MAX_SEND_ATTEMPTS:
            cooldown.release(recipient=draft.recipient, workflow_id=workflow_id)
            transition(
                workflow_id,
                from_status=Status.SENDING,
                to_status=Status.FAILED,
                reason=f"the provider refused the message ({error}); the rep follows up by hand",
                fields={"last_error": error},
            )
            return "failed"
    raise SendDeferred(error)


def _record_unknown(workflow_id: int, exc: BaseException) -> None:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    logger.exception("send outcome unknown for workflow %s", workflow_id)
    with transaction.atomic():
        EmailDraft.objects.filter(workflow_id=workflow_id).update(
            last_send_error=error, updated_at=timezone.now()
        )
        transition(
            workflow_id,
            from_status=Status.SENDING,
            to_status=Status.SEND_UNKNOWN,
            reason=f"the message may have been sent ({error}); check the mail provider, "
            "then resolve by hand. It is never resent automatically.",
            fields={"last_error": error},
        )


def _record_sent(workflow_id: int, *, provider_id: str) -> None:
    with transaction.atomic():
        draft = EmailDraft.objects.select_for_update().get(workflow_id=workflow_id)
        draft.sent_at = timezone.now()
        draft.provider_message_id = provider_id[:255]
        draft.save(update_fields=["sent_at", "provider_message_id", "updated_at"])
        reason = f"accepted by the provider as {provider_id}"
        won = transition(
            workflow_id, from_status=Status.SENDING, to_status=Status.SENT, reason=reason
        )
        if not won and won.current_status == Status.SEND_UNKNOWN:
            # Presumed lost by a worker that found our claim stale; it did go out.
            transition(
                workflow_id, from_status=Status.SEND_UNKNOWN, to_status=Status.SENT, reason=reason
            )
        audit.record(
            action="email.sent",
            object_type="email_draft",
            object_id=draft.pk,
            workflow_id=workflow_id,
            details={
                "recipient": draft.recipient,
                "message_id": provider_id,
                "attempt": draft.send_attempts,
            },
        )


# --- CRM note for the rep -------------------------------------------------------------------


#: Why Leadline did not send, for the rep (the gate's reasons are written for operators and
#: the audit trail: "draft-only mode (MODE_DRAFT_ONLY=true): …"), by their opening words.
_REP_REASONS = (
    ("draft-only mode", "Leadline drafts only and sends nothing"),
    ("API_ENV=", "Leadline sends email only in production"),
    ("recipient is not on SEND_EMAIL_ALLOWLIST", "this address is not on Leadline's send list"),
    ("no valid recipient email", "the lead left no usable email address: reach them another way"),
    ("recipient cooldown", "this address was emailed recently: check before sending another"),
    ("gate re-check before sending", "Leadline's send mode changed before it went out"),
)


def _not_sent_because(draft: EmailDraft) -> str:
    reason = draft.gate_reason or ""
    for opening, text in _REP_REASONS:
        if reason.startswith(opening) or reason.startswith(
            f"gate re-check before sending: {opening}"
        ):
            return text
    return "Leadline did not send it"


def crm_note_write(*, workflow_id: int, retrying: bool = False) -> str:
    """Put the final text on the HubSpot contact as a note so the rep can send it by hand.

    Never sends email. Skips (with an audit row saying why) without a CRM client or contact,
    and when a note was already written for this workflow. A retry first looks for the note
    by its marker: an earlier attempt may have created it and lost the answer (a timeout).
    """
    from workflows.hubspot.client import kept_client

    if AuditEvent.objects.filter(workflow_id=workflow_id, action="crm_note.created").exists():
        return "skipped: note already written"
    workflow = Workflow.objects.get(pk=workflow_id)
    draft = EmailDraft.objects.get(workflow_id=workflow_id)
    client = kept_client()
    if client is None or not workflow.contact_id:
        why = "no HubSpot client configured" if client is None else "no HubSpot contact id"
        audit.record(
            action="crm_note.skipped",
            object_type="email_draft",
            object_id=draft.pk,
            workflow_id=workflow_id,
            reason=f"{why}: the draft is only visible in Leadline",
        )
        return f"skipped: {why}"
    from workflows import crm_html  # HTML: HubSpot renders note bodies as rich text

    body = crm_html.join(
        crm_html.paragraph(
            f"Follow-up email for the rep to send by hand ({_not_sent_because(draft)})."
        ),
        crm_html.paragraph(
            "What to do: send the email below to the lead from your own mailbox (adjust it as "
            "you see fit), then log it on this contact. It was approved in Leadline."
        ),
        crm_html.paragraph(f"To: {draft.recipient}\nSubject: {draft.subject}"),
        crm_html.paragraphs(draft.body),
    )
    marker = f"workflow-{workflow_id}-note"
    note = client.find_note_by_marker(marker) if retrying else None
    if note is None:
        note = client.create_note(contact_id=workflow.contact_id, body=body, marker=marker)
    audit.record(
        action="crm_note.created",
        object_type="email_draft",
        object_id=draft.pk,
        workflow_id=workflow_id,
        details={"note_id": str(note.get("id", ""))},
    )
    return "note written"


# --- Send mode audit ------------------------------------------------------------------------


def record_mode_change_if_needed(mode: SendMode | None = None) -> bool:
    """Write one ``send_mode.changed`` audit row if ``mode`` differs from the last recorded.

    Idempotent; concurrent callers (web, workers starting together) are serialised by a
    transaction-scoped advisory lock on PostgreSQL (SQLite serialises writers already).
    Returns whether a row was written.
    """
    snapshot = (mode or current_mode()).as_dict()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_MODE_LOCK_KEY])
        last = AuditEvent.objects.filter(action=MODE_CHANGED).order_by("-created_at", "-id").first()
        previous = last.details.get("mode") if last else None
        if previous == snapshot:
            return False
        audit.record(
            action=MODE_CHANGED,
            object_type="send_mode",
            reason="first recorded send mode" if previous is None else "send mode changed",
            details={"mode": snapshot, "previous": previous},
        )
    return True
