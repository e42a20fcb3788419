"""The steps of one workflow run, and the bookkeeping around them.

``run_workflow`` is what the ``process_workflow`` task calls. It claims the workflow (a lease
held by the Celery task id), runs each step unless its output is already stored, and decides
per failure whether to retry (transient), or fail (permanent / retries exhausted). HubSpot is
only ever called outside a database transaction.
"""

from __future__ import annotations

import logging
import random
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from intake.models import FormSubmission
from intake.payloads import normalise_email
from workflows import metrics
from workflows.hubspot.client import (
    CONTACT_PROPERTIES,
    HubSpotClient,
    HubSpotError,
    HubSpotPaused,
    TransientHubSpotError,
    kept_client,
)
from workflows.hubspot.names import owner_name
from workflows.models import Status, Step, Workflow, WorkflowError
from workflows.transitions import transition, update_workflow

log = logging.getLogger("leadline.workflows")

NO_CRM = "HUBSPOT_ACCESS_TOKEN is not set: CRM step skipped"


class PermanentStepError(Exception):
    """A step cannot succeed with this input; retrying will not help."""


class RetryLater(Exception):
    """Run the workflow again after ``countdown`` seconds (the task schedules it).

    ``kind`` is "error" after a transient failure (recorded, counts as an attempt) or
    "index_lag" when a search missed a lead HubSpot may not have indexed yet (neither).
    """

    def __init__(self, countdown: float, step: str, attempt: int, kind: str = "error") -> None:
        super().__init__(f"retry {step} attempt {attempt + 1} in {countdown:.1f}s ({kind})")
        self.countdown = countdown
        self.step = step
        self.attempt = attempt
        self.kind = kind


class NotIndexedYet(Exception):
    """The contact search missed; HubSpot's index may lag a new record. Ask again later."""

    def __init__(self, countdown: float) -> None:
        super().__init__(f"contact not found yet; searching again in {countdown:.1f}s")
        self.countdown = countdown


class ContactPending(Exception):
    """The search missed a lead new to HubSpot: the step ends now (drafted from the form data)
    and the contact is attached in the background (``contact_attach``)."""


# The client already turns timeouts, 429s, 5xx and throttle waits into TransientHubSpotError.
TRANSIENT = (TransientHubSpotError, OperationalError, InterfaceError)


@dataclass
class Outcome:
    status: str
    detail: str = ""


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter on top of the base; HubSpot's Retry-After wins."""
    base = settings.WORKFLOW_RETRY_BASE_SECONDS * (2 ** (attempt - 1))
    delay = min(base + random.uniform(0, base), settings.WORKFLOW_RETRY_MAX_SECONDS)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def claim(workflow_id: int, task_id: str) -> Workflow | None:
    """Take the workflow's lease for this task, or return None if someone else holds it.

    ``pending`` is claimed through the state machine (``pending → running``). A ``running``
    workflow is re-claimed only by the task that holds it (a Celery retry keeps its id), or
    when the lease is free: released by the sweeper, or expired because the worker died.
    """
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WORKFLOW_LEASE_SECONDS)
    result = transition(
        workflow_id,
        from_status=Status.PENDING,
        to_status=Status.RUNNING,
        reason="claimed by a worker",
        details={"task_id": task_id},
        fields={"claimed_by": task_id, "lease_expires_at": lease},
        fetch=True,
    )
    if result.won:
        return result.workflow  # read by the claim's own statement
    if result.current_status != Status.RUNNING:
        return None
    free = Q(claimed_by=task_id) | Q(claimed_by="") | Q(lease_expires_at__lt=now)
    taken = Workflow.objects.filter(Q(pk=workflow_id, status=Status.RUNNING) & free).update(
        claimed_by=task_id, lease_expires_at=lease, updated_at=now
    )
    if not taken:
        return None
    return Workflow.objects.select_related("submission").get(pk=workflow_id)


#: Workflow columns a step may set on the workflow object; written with the step's finish.
STEP_OUTPUTS = ("contact_id", "owner_id", "contact", "task_id")


def _start_step(workflow: Workflow, step: str, task_id: str, finished: dict[str, Any]) -> bool:
    """Count the step's attempt and renew the lease, in one UPDATE that only matches while this
    task holds the workflow: False when the sweeper gave it to another task (nothing written).

    ``finished`` is the previous step's finishing write (its step-log entry is already in
    ``workflow.step_log``, plus the columns it set): it goes in the same UPDATE, so a step
    costs one commit between its HubSpot calls, not two.
    The attempt is stored before the step calls HubSpot, so a crash mid-step still counts it
    (create_crm_task looks for its marker when attempts > 1)."""
    entry = dict(workflow.step_log.get(step, {}))
    entry.update(
        attempts=entry.get("attempts", 0) + 1,
        started_at=entry.get("started_at") or timezone.now().isoformat(),
    )
    step_log = {**workflow.step_log, step: entry}
    now = timezone.now()
    started = update_workflow(
        workflow.pk,
        {
            **finished,
            "step_log": step_log,
            "current_step": step,
            "attempts": entry["attempts"],
            "lease_expires_at": now + timedelta(seconds=settings.WORKFLOW_LEASE_SECONDS),
            "updated_at": now,
        },
        status=Status.RUNNING,
        claimed_by=task_id,
    )
    if started:
        workflow.step_log, workflow.current_step = step_log, step
        workflow.attempts = entry["attempts"]
    return bool(started)


def _write_finished(workflow: Workflow, finished: dict[str, Any]) -> None:
    """A finishing write with no next step to fold into: on its own, unconditionally (as every
    finishing write was before they were folded), so a step's outputs are never lost."""
    if finished:
        update_workflow(workflow.pk, {**finished, "updated_at": timezone.now()})


# --- steps -----------------------------------------------------------------------------------
def resolve_contact(workflow: Workflow, client: HubSpotClient | None) -> str:
    if workflow.contact_id:
        return "already resolved"
    submission = workflow.submission
    if client is None:
        if submission.email_error or not submission.email:
            raise PermanentStepError(
                submission.email_error or "no email in the submission and no CRM to look it up"
            )
        return NO_CRM
    contact: dict[str, Any] | None
    if submission.object_id and submission.shape in ("event", "workflow"):
        contact = client.get_contact(submission.object_id)
    elif submission.email_error or not submission.email:
        raise PermanentStepError(f"cannot look the lead up: {submission.email_error or 'no email'}")
    else:
        contact = client.search_contact_by_email(submission.email)
        if contact is None and attach_in_background():
            # A new lead: draft from the form now; HubSpot's own form processing creates the
            # contact (its index then shows it), and contact_attach picks it up.
            raise ContactPending()
        if contact is None:
            misses = workflow.step_log.get(Step.RESOLVE_CONTACT, {}).get("search_misses", 0)
            if misses < settings.CONTACT_SEARCH_LAG_RETRIES:
                # Searched again from a Celery countdown, not a sleep: no worker slot is held.
                raise NotIndexedYet(settings.CONTACT_SEARCH_LAG_BASE_SECONDS * 2**misses)
            contact = client.create_contact(_new_contact_properties(submission))
    duplicate = _claim_lead_contact(workflow, str(contact["id"]))
    if duplicate:
        return duplicate
    _set_contact(workflow, contact, client)
    return f"contact {workflow.contact_id}, owner {workflow.owner_id or 'none'}"


def attach_in_background() -> bool:
    """Whether a lead HubSpot's search does not know yet is drafted at once and its contact
    attached afterwards (a human approves every draft), or waited for (auto-send: the email
    leaves without a human, so it waits for the contact's facts and duplicate check)."""
    from outreach.gate import current_mode

    if not settings.CONTACT_ATTACH_IN_BACKGROUND or settings.CONTACT_SEARCH_LAG_RETRIES <= 0:
        return False
    mode = current_mode()
    return not (mode.auto_send and mode.can_send)


def _set_contact(workflow: Workflow, contact: dict[str, Any], client: HubSpotClient) -> None:
    """The contact's id, owner and facts on the workflow (in memory; the caller writes them),
    and the lead columns the delivery left blank filled from them (``submission_fill``)."""
    props = contact.get("properties") or {}
    owner_id = str(props.get("hubspot_owner_id") or "")
    owner = client.get_owner(owner_id) if owner_id else None
    facts = {k: props.get(k) or "" for k in CONTACT_PROPERTIES if k != "hubspot_owner_id"}
    if owner and owner.get("archived"):
        # A deactivated user (HubSpot keeps them as the contact's owner). The id stays, so the
        # dashboard names them; the draft is not signed by someone who cannot answer, and the
        # CRM task is not assigned to them (HubSpot takes no new records for them).
        facts["owner_archived"] = True
    elif owner:
        facts["owner"] = {"name": owner_name(owner), "email": owner.get("email") or ""}
    workflow.contact_id = str(contact["id"])
    workflow.owner_id = owner_id
    workflow.contact = facts
    submission_fill(workflow.submission, facts)


#: The submission's lead columns and the contact property each is filled from.
LEAD_COLUMNS = (
    ("email", "email"),
    ("first_name", "firstname"),
    ("last_name", "lastname"),
    ("company", "company"),
)


def submission_fill(submission: FormSubmission, facts: dict[str, Any]) -> list[str]:
    """Fill the lead columns the delivery left blank from the CRM contact's facts; returns
    the columns filled. A Webhooks API event carries only the contact id, so without this its
    lead had no name or email in the dashboard and the search (which reads these columns,
    through their trigram indexes) could not find it. A value the delivery carried is never
    replaced, ``raw_payload`` stays as delivered, and an erased submission stays erased.

    Written here, in one UPDATE of its own: it is another table than the workflow's step
    write, so it cannot share that statement. Only for a delivery that did not name its lead
    (no email, or no name): one that did (most form posts) costs none. Each column is set
    only while still empty, in the same statement."""
    if submission.email and (submission.first_name or submission.last_name):
        # A delivery that named its lead (most form posts) is found and shown by that; its
        # statement is not worth a blank company (a statement per lead: -2 points of the
        # pipeline bench, where the forms carry no company and the CRM contacts do).
        return []
    blanks: dict[str, str] = {}
    for column, prop in LEAD_COLUMNS:
        value = str(facts.get(prop) or "").strip()
        limit = FormSubmission._meta.get_field(column).max_length
        if column == "email":
            # As intake stores an address: normalised, and never cut to the column's length.
            value = normalise_email(value)[0]
            if len(value) > limit:
                continue
        if value and not getattr(submission, column):
            blanks[column] = value[:limit]
    if not blanks or submission.erased_at:
        return []
    filled = FormSubmission.objects.filter(pk=submission.pk, erased_at__isnull=True).update(
        **{
            column: Case(When(**{column: ""}, then=Value(value)), default=F(column))
            for column, value in blanks.items()
        }
    )
    if not filled:
        return []
    for column, value in blanks.items():
        setattr(submission, column, value)
    return list(blanks)


def _claim_lead_contact(workflow: Workflow, contact_id: str) -> str:
    """One lead, one workflow (intake/identity.py): claim the contact for this workflow's
    lead. If another lead already holds it, end this workflow as a duplicate of that lead's
    (completed, nothing drafted or created) and return the note; else return ""."""
    duplicate = _duplicate_of(workflow, contact_id)
    if duplicate is None:
        return ""
    transition(
        workflow.pk,
        from_status=Status.RUNNING,
        to_status=Status.COMPLETED,
        reason=duplicate.reason,
        details=duplicate.details,
        fields={"contact_id": contact_id, "last_error": duplicate.reason, "claimed_by": ""},
    )
    return duplicate.reason


@dataclass(frozen=True)
class _Duplicate:
    reason: str
    details: dict[str, Any]


def _duplicate_of(workflow: Workflow, contact_id: str) -> _Duplicate | None:
    """Claim ``contact:<id>`` for the workflow's lead; None when it is this lead's, else why
    this workflow is another lead's duplicate (one wording for both callers)."""
    from intake.identity import lead_claim_contact, workflows_of_leads

    lead_id = workflow.submission.lead_id
    if lead_id is None:
        return None
    claim = lead_claim_contact(lead_id=lead_id, contact_id=contact_id)
    if not claim.is_duplicate:
        return None
    original = workflows_of_leads({claim.holder_id}).get(claim.holder_id)
    reason = (
        f"duplicate of workflow #{original} (lead {claim.holder_id}): "
        f"contact {contact_id} already has a workflow"
    )
    return _Duplicate(reason, {"duplicate_of_workflow": original, "lead": claim.holder_id})


def contact_pending(step_log: dict[str, Any] | None) -> bool:
    """Whether a workflow with this step log was drafted before its contact was found
    (ContactPending) and not attached yet: approval waits for contact_attach (outreach refuses
    it meanwhile)."""
    return bool((step_log or {}).get(Step.RESOLVE_CONTACT, {}).get("contact_pending"))


ATTACH_TASK = "workflows.attach_contact"


class AttachAgain(Exception):
    """contact_attach wants another try after ``countdown`` seconds (the task publishes it)."""

    def __init__(self, countdown: float, misses: int, attempt: int, token: str = "") -> None:
        super().__init__(f"attach the contact again in {countdown:.1f}s")
        self.countdown, self.misses, self.attempt = countdown, misses, attempt
        self.token = token


def contact_attach_later(
    workflow_id: int,
    *,
    misses: int,
    attempt: int = 0,
    countdown: float | None = None,
    token: str = "",
) -> bool:
    """Publish ``attach_contact``; a broker outage is logged, and the sweeper publishes it
    again for a waiting workflow whose contact is still pending. ``token`` names the chain of
    tries (a new one unless this continues one): only the chain holding the attach lease
    works, so a second chain (a re-run's, the sweeper's) creates no second contact or task."""
    from celery import current_app

    if countdown is None:
        countdown = settings.CONTACT_SEARCH_LAG_BASE_SECONDS * 2**misses
    token = token or uuid.uuid4().hex
    try:
        current_app.send_task(
            ATTACH_TASK,
            args=[workflow_id, misses, attempt, token],
            countdown=countdown,
            retry=False,
        )
    except Exception as exc:  # any broker failure: the sweeper publishes it again
        log.warning(
            "Broker unavailable; contact attach left for the sweeper",
            extra={"workflow_id": workflow_id, "error": type(exc).__name__},
        )
        return False
    return True


def attach_chain_alive(step_log: dict[str, Any], now: datetime) -> bool:
    """Whether a chain of attach tries holds an unexpired lease (see _attach_lease)."""
    until = (step_log.get(Step.RESOLVE_CONTACT, {}).get("attach_lease") or ["", ""])[1]
    return until > now.isoformat()


def _attach_lease(
    workflow_id: int, token: str, seconds: float, *, misses: int | None = None
) -> bool:
    """Take (or extend) the attach lease for the chain ``token``: False while another chain
    holds an unexpired one, or when the contact is no longer pending. ``misses``: the chain's
    search misses so far, kept with the lease so that a chain started after this one died
    (the sweeper's) goes on counting instead of starting again from none."""
    now = timezone.now()
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().only("step_log").filter(pk=workflow_id)
        workflow = workflow.first()
        if workflow is None:
            return False
        if not contact_pending(workflow.step_log):
            return False
        entry = workflow.step_log[Step.RESOLVE_CONTACT]
        holder = (entry.get("attach_lease") or [""])[0]
        if holder and holder != token and attach_chain_alive(workflow.step_log, now):
            return False
        entry["attach_lease"] = [token, (now + timedelta(seconds=seconds)).isoformat()]
        if misses is not None:
            entry["attach_misses"] = max(misses, entry.get("attach_misses", 0))
        Workflow.objects.filter(pk=workflow_id).update(
            step_log={**workflow.step_log, Step.RESOLVE_CONTACT: entry}, updated_at=now
        )
    return True


def contact_attach(workflow_id: int, *, misses: int = 0, attempt: int = 0, token: str = "") -> str:
    """The background half of resolve_contact for a lead HubSpot's search did not know yet
    (ContactPending): its draft already waits for approval, which is refused until this ends.

    Searches again (HubSpot's index lags a new contact, and its own form processing creates
    the contact with the form's source attribution); after CONTACT_SEARCH_LAG_RETRIES misses
    it creates the contact, as the waiting path always did. Then, as resolve_contact would:
    a contact that another lead holds ends this workflow as that lead's duplicate; otherwise
    its facts and owner are stored, an untouched draft whose text they change is re-drafted
    (its version goes up), and the CRM task is created. Raises AttachAgain when the task
    should try again; every error is recorded (WorkflowError), and approval is never blocked
    for good: after a permanent error or WORKFLOW_MAX_ATTEMPTS tries the draft from the form
    data stays, with the error on the workflow.
    """
    token = token or uuid.uuid4().hex
    workflow = Workflow.objects.select_related("submission").filter(pk=workflow_id).first()
    if workflow is None or not contact_pending(workflow.step_log):
        return "nothing to attach"
    if workflow.status in (Status.PENDING, Status.RUNNING):
        # The run that drafted it has not handed off yet (or waits out a retry): after it has.
        wait = max(1.0, settings.CONTACT_SEARCH_LAG_BASE_SECONDS)
        raise AttachAgain(wait, misses, attempt, token)
    if not _attach_lease(workflow_id, token, settings.WORKFLOW_LEASE_SECONDS):
        return "another attach holds the lease"
    workflow = Workflow.objects.select_related("submission").get(pk=workflow_id)
    if workflow.status != Status.AWAITING_APPROVAL:
        return _attach_done(workflow, f"workflow {workflow.status} before its contact was found")
    # A chain started after another died carries on from that one's misses.
    misses = max(misses, workflow.step_log[Step.RESOLVE_CONTACT].get("attach_misses", 0))
    client = kept_client()
    if client is None:
        return _attach_done(workflow, NO_CRM)
    from outreach.services import draft_refresh

    step = Step.RESOLVE_CONTACT
    try:
        contact = client.search_contact_by_email(workflow.submission.email)
        if contact is None:
            misses += 1
            if misses < settings.CONTACT_SEARCH_LAG_RETRIES:
                raise _again(
                    workflow, settings.CONTACT_SEARCH_LAG_BASE_SECONDS * 2**misses, misses, attempt
                )
            contact = client.create_contact(_new_contact_properties(workflow.submission))
        duplicate = _attach_duplicate(workflow, str(contact["id"]))
        if duplicate:
            return duplicate
        _set_contact(workflow, contact, client)
        # The facts first (approval still waits), then the draft from them, then the CRM task,
        # whose body carries that draft.
        Workflow.objects.filter(pk=workflow.pk).update(
            contact_id=workflow.contact_id,
            owner_id=workflow.owner_id,
            contact=workflow.contact,
            updated_at=timezone.now(),
        )
        refreshed = draft_refresh(workflow_id=workflow.pk)
        # A try after the first may follow one that created the task and lost the answer.
        create_crm_task(workflow, client, look_first=attempt > 0)
    except AttachAgain:
        raise
    except HubSpotPaused as paused:
        # The daily limit: not an attempt and not an error; again when the window resets.
        raise _again(workflow, float(paused.retry_after or 60.0), misses, attempt) from paused
    except TRANSIENT as exc:
        if attempt + 1 >= settings.WORKFLOW_MAX_ATTEMPTS:
            _record_error(workflow, step, attempt + 1, exc, retryable=True)
            note = f"contact not attached, retries exhausted: {exc}"
            return _attach_done(workflow, note, error=True)
        countdown = backoff_seconds(attempt + 1, getattr(exc, "retry_after", None))
        _record_error(workflow, step, attempt + 1, exc, retryable=True, retry_in=countdown)
        raise _again(workflow, countdown, misses, attempt + 1) from exc
    except Exception as exc:
        _record_error(workflow, step, attempt + 1, exc, retryable=False)
        return _attach_done(workflow, f"contact not attached: {exc}", error=True)
    note = f"contact {workflow.contact_id} attached, owner {workflow.owner_id or 'none'}"
    if workflow.task_id:
        # The task step's own note (made before the contact was known) stays: the task is an
        # event of the attach, with its time (the dashboard's timeline shows it then).
        task_entry = workflow.step_log.setdefault(Step.CREATE_CRM_TASK, {})
        task_entry.update(
            attach_note=f"task {workflow.task_id}", attached_at=timezone.now().isoformat()
        )
    return _attach_done(workflow, note + ("; draft re-drafted" if refreshed else ""))


def _again(workflow: Workflow, countdown: float, misses: int, attempt: int) -> AttachAgain:
    """The next try of this chain: its lease now lasts past the countdown."""
    token = workflow.step_log[Step.RESOLVE_CONTACT]["attach_lease"][0]
    _attach_lease(workflow.pk, token, countdown + settings.WORKFLOW_LEASE_SECONDS, misses=misses)
    return AttachAgain(countdown, misses, attempt, token)


def _attach_duplicate(workflow: Workflow, contact_id: str) -> str:
    """The contact is another lead's: this waiting workflow ends as its duplicate."""
    duplicate = _duplicate_of(workflow, contact_id)
    if duplicate is None:
        return ""
    entry = _attach_entry(workflow, duplicate.reason)
    transition(
        workflow.pk,
        from_status=Status.AWAITING_APPROVAL,
        to_status=Status.COMPLETED,
        reason=duplicate.reason,
        details=duplicate.details,
        fields={"contact_id": contact_id, "last_error": duplicate.reason, "step_log": entry},
    )
    return duplicate.reason


def _attach_entry(workflow: Workflow, note: str) -> dict[str, Any]:
    """The step log with how the attach ended: in ``attach_note`` at ``attached_at``. The
    step's own ``note`` and times stay as the step left them (the timeline shows both, each
    at its own time; the attach's note used to replace the step's, at the step's time)."""
    step_log = dict(workflow.step_log)
    entry = dict(step_log.get(Step.RESOLVE_CONTACT, {}))
    entry.pop("contact_pending", None)
    entry.pop("attach_lease", None)
    entry.update(attach_note=note, attached_at=timezone.now().isoformat())
    step_log[Step.RESOLVE_CONTACT] = entry
    return step_log


def _attach_done(workflow: Workflow, note: str, *, error: bool = False) -> str:
    """Store how the attach ended (and the CRM task it created) and allow approval, in one
    UPDATE. The contact's facts were stored before the draft was refreshed."""
    fields: dict[str, Any] = {
        "step_log": _attach_entry(workflow, note),
        "task_id": workflow.task_id,
    }
    if error:
        fields["last_error"] = note[:2000]
    Workflow.objects.filter(pk=workflow.pk).update(**fields, updated_at=timezone.now())
    log.info("Contact attach ended", extra={"workflow_id": workflow.pk, "note": note})
    return note


def _new_contact_properties(submission) -> dict[str, str]:
    props = {
        "email": submission.email,
        "firstname": submission.first_name,
        "lastname": submission.last_name,
        "company": submission.company,
        "phone": submission.phone,
    }
    return {k: v for k, v in props.items() if v}


def draft_email(workflow: Workflow, client: HubSpotClient | None) -> str:
    from outreach.services import DraftRefused, draft_create

    try:
        first_try = _attempts_used(workflow, Step.DRAFT_EMAIL) == 1
        draft = draft_create(workflow_id=workflow.pk, workflow=workflow, first_try=first_try)
    except DraftRefused as exc:
        raise PermanentStepError(str(exc)) from exc
    workflow.draft = draft  # cached: the task body and the hand-off read it without a query
    return f"draft {draft.pk} from {draft.template}"


def create_crm_task(
    workflow: Workflow, client: HubSpotClient | None, *, look_first: bool | None = None
) -> str:
    """The rep's follow-up task, carrying the draft. ``look_first``: search for the task's
    marker before creating it (an earlier try may have created it and lost the answer);
    by default when the step has been started more than once."""
    if workflow.task_id:
        return "already created"
    if workflow.shadow:
        return "shadow replay: no CRM task"
    if client is None:
        return NO_CRM
    if not workflow.contact_id:
        if contact_pending(workflow.step_log):
            return "no contact yet: the task is created when the contact is attached"
        return "no contact: CRM task skipped"
    marker = f"workflow-{workflow.pk}"
    task = None
    if look_first is None:
        look_first = workflow.step_log.get(Step.CREATE_CRM_TASK, {}).get("attempts", 0) > 1
    if look_first:
        # An earlier attempt may have created the task and lost the answer (timeout):
        # look for it before creating another one.
        task = _find_task_with_index_lag(client, marker)
    if task is None:
        task = client.create_task(
            contact_id=workflow.contact_id,
            owner_id=None if workflow.contact.get("owner_archived") else workflow.owner_id or None,
            subject=_task_subject(workflow),
            body=_task_body(workflow),
            due_at=workflow.submission.received_at
            + timedelta(minutes=settings.FOLLOW_UP_TARGET_MINUTES),
            marker=marker,
        )
    workflow.task_id = str(task["id"])  # written with the step's finish (see run_workflow)
    return f"task {workflow.task_id}"


def _find_task_with_index_lag(client: HubSpotClient, marker: str) -> dict[str, Any] | None:
    for delay in (settings.CONTACT_SEARCH_LAG_BASE_SECONDS, None):
        found = client.find_task_by_marker(marker)
        if found is not None or delay is None:
            return found
        time.sleep(delay)
    return None


def _task_subject(workflow: Workflow) -> str:
    sub = workflow.submission
    who = sub.full_name or sub.email or workflow.contact.get("email") or "a lead"
    return f"Follow up with {who}" + (f" ({sub.company})" if sub.company else "")


def _task_body(workflow: Workflow) -> str:
    """HTML (HubSpot renders task bodies as rich text): every lead-derived value escaped."""
    from workflows import crm_html

    link = f"{settings.DASHBOARD_BASE_URL}/dashboard/workflows/{workflow.pk}/"
    draft = getattr(workflow, "draft", None)
    text = (
        crm_html.join(
            crm_html.paragraph(f"Subject: {draft.subject}"), crm_html.paragraphs(draft.body)
        )
        if draft
        else crm_html.paragraph("(no draft)")
    )
    return crm_html.join(crm_html.link_paragraph("Review and approve in Leadline", link), text)


def hand_off(workflow: Workflow, client: HubSpotClient | None) -> str:
    from outreach.services import hand_off as gate_hand_off

    draft = workflow.draft if Workflow.draft.is_cached(workflow) else None
    decision = gate_hand_off(workflow_id=workflow.pk, draft=draft, workflow=workflow)
    return f"{decision.action}: {decision.reason}"


STEPS: list[tuple[str, Callable[[Workflow, HubSpotClient | None], str]]] = [
    (Step.RESOLVE_CONTACT, resolve_contact),
    (Step.DRAFT_EMAIL, draft_email),
    (Step.CREATE_CRM_TASK, create_crm_task),
    (Step.HAND_OFF, hand_off),
]


# --- the run ---------------------------------------------------------------------------------
def run_workflow(workflow_id: int, *, task_id: str) -> Outcome:
    """Run every remaining step of one workflow. Idempotent; safe to call again after a crash.

    Raises RetryLater when a transient error should be retried after a countdown; the caller
    (the Celery task) schedules that. Never sends email itself: the gate's hand-off does.
    """
    workflow = claim(workflow_id, task_id)
    if workflow is None:
        current = Workflow.objects.filter(pk=workflow_id).values_list("status", flat=True).first()
        return Outcome("skipped", f"not claimable (status {current})")
    client = kept_client()
    finished: dict[str, Any] = {}  # the last step's finishing write, not yet stored
    for step, func in STEPS:
        if workflow.step_log.get(step, {}).get("finished_at"):
            continue
        if _attempts_used(workflow, step) >= settings.WORKFLOW_MAX_ATTEMPTS:
            # A redelivered message after a crash mid-step: never a run past the limit.
            _write_finished(workflow, finished)
            why = f"exceeded attempts ({settings.WORKFLOW_MAX_ATTEMPTS})"
            _fail(
                workflow,
                step,
                _attempts_used(workflow, step),
                ExceededAttempts(why),
                retryable=True,
                why=why,
            )
            raise StepFailed(why)
        if not _start_step(workflow, step, task_id, finished):
            _write_finished(workflow, finished)
            return Outcome("skipped", "lease taken over by another task")
        finished = _run_step(workflow, step, func, client)
    _write_finished(workflow, finished)
    if contact_pending(workflow.step_log):
        contact_attach_later(workflow.pk, misses=0)
    if workflow.status != Status.RUNNING:  # the hand-off moved it in this run
        return Outcome(workflow.status)
    status = Workflow.objects.filter(pk=workflow_id).values_list("status", flat=True).first()
    return Outcome(status or "gone")


def _attempts_used(workflow: Workflow, step: str) -> int:
    return workflow.step_log.get(step, {}).get("attempts", 0)


def _run_step(workflow: Workflow, step: str, func, client) -> dict[str, Any]:
    """Run one started step (see _start_step) and record how it ended. A step that succeeded
    returns its finishing write (step log and the columns it set) for the caller to store
    with the next step's start; every other ending is stored here and raises."""
    entry = dict(workflow.step_log[step])
    attempt = entry["attempts"]
    extra = {"workflow_id": workflow.pk, "step": step, "attempt": attempt}
    started = time.monotonic()
    outputs = {name: getattr(workflow, name) for name in STEP_OUTPUTS}
    try:
        note = func(workflow, client)
    except ContactPending:
        note = "not in HubSpot's search yet: drafted from the form; contact attached when found"
        entry["contact_pending"] = True
    except NotIndexedYet as lag:
        _on_search_lag(workflow, step, entry, attempt, lag)
        return  # _on_search_lag always raises
    except HubSpotPaused as paused:
        _on_hubspot_paused(workflow, step, entry, attempt, paused)
        return  # _on_hubspot_paused always raises
    except TRANSIENT as exc:
        duration = time.monotonic() - started
        metrics.STEP_SECONDS.labels(step, "retry").observe(duration)
        _on_transient(workflow, step, attempt, exc, duration)
        return  # _on_transient always raises
    except (HubSpotError, PermanentStepError) as exc:
        duration = time.monotonic() - started
        metrics.STEP_SECONDS.labels(step, "failed").observe(duration)
        _fail(workflow, step, attempt, exc, retryable=False)
        raise StepFailed(str(exc)) from exc
    except Exception as exc:
        # Not known to be permanent, so treated as transient: recorded with its traceback,
        # retried with backoff, and failed (and alerted) once the attempts run out. Letting
        # it escape left the workflow ``running`` for the sweeper to re-run forever.
        duration = time.monotonic() - started
        metrics.STEP_SECONDS.labels(step, "retry").observe(duration)
        _on_transient(workflow, step, attempt, exc, duration)
        return  # _on_transient always raises
    duration = time.monotonic() - started
    metrics.STEP_SECONDS.labels(step, "ok").observe(duration)
    entry.update(
        finished_at=timezone.now().isoformat(), duration_ms=round(duration * 1000), note=note
    )
    workflow.step_log[step] = entry
    log.info("Step finished", extra={**extra, "duration_ms": round(duration * 1000), "note": note})
    changed = {k: getattr(workflow, k) for k, v in outputs.items() if getattr(workflow, k) != v}
    return {**changed, "step_log": workflow.step_log}


def _on_search_lag(
    workflow: Workflow, step: str, entry: dict[str, Any], attempt: int, lag: NotIndexedYet
) -> None:
    """Not an error and not an attempt: note the miss, keep the lease, ask again later."""
    entry.update(attempts=attempt - 1, search_misses=entry.get("search_misses", 0) + 1)
    workflow.step_log[step] = entry
    lease = timezone.now() + timedelta(seconds=lag.countdown + settings.WORKFLOW_LEASE_SECONDS)
    Workflow.objects.filter(pk=workflow.pk).update(
        step_log=workflow.step_log, attempts=attempt - 1, lease_expires_at=lease
    )
    log.info(
        "Contact not in HubSpot's search yet; searching again",
        extra={
            "workflow_id": workflow.pk,
            "step": step,
            "delay_s": lag.countdown,
            "search_misses": entry["search_misses"],
        },
    )
    raise RetryLater(lag.countdown, step, attempt - 1, kind="index_lag")


def _on_hubspot_paused(
    workflow: Workflow, step: str, entry: dict[str, Any], attempt: int, paused: HubSpotPaused
) -> None:
    """HubSpot's daily limit is spent: not an attempt; run again when the window resets."""
    countdown = float(paused.retry_after or 60.0)
    entry.update(attempts=attempt - 1, paused=entry.get("paused", 0) + 1)
    workflow.step_log[step] = entry
    lease = timezone.now() + timedelta(seconds=countdown + settings.WORKFLOW_LEASE_SECONDS)
    Workflow.objects.filter(pk=workflow.pk).update(
        step_log=workflow.step_log,
        attempts=attempt - 1,
        lease_expires_at=lease,
        last_error=f"{step}: waiting for HubSpot's daily limit to reset ({countdown:.0f}s)",
    )
    log.warning(
        "HubSpot daily limit reached; step waits for the reset",
        extra={"workflow_id": workflow.pk, "step": step, "delay_s": round(countdown, 1)},
    )
    raise RetryLater(countdown, step, attempt - 1, kind="daily_limit")


class StepFailed(Exception):
    """The workflow was moved to ``failed``; the task should stop without retrying."""


class ExceededAttempts(Exception):
    """A step was started WORKFLOW_MAX_ATTEMPTS times without an outcome (workers died)."""


def _record_error(
    workflow: Workflow,
    step: str,
    attempt: int,
    exc: BaseException,
    *,
    retryable: bool,
    retry_in: float | None = None,
) -> None:
    WorkflowError.objects.create(
        workflow=workflow,
        step=step,
        attempt=attempt,
        exception_type=type(exc).__name__,
        message=str(exc)[:2000],
        traceback="".join(traceback.format_exception(exc))[-8000:],
        retryable=retryable,
        retry_in_seconds=retry_in,
    )


def _on_transient(
    workflow: Workflow, step: str, attempt: int, exc: BaseException, duration: float
) -> None:
    if attempt >= settings.WORKFLOW_MAX_ATTEMPTS:
        _fail(
            workflow,
            step,
            attempt,
            exc,
            retryable=True,
            why=f"retries exhausted after {attempt} attempts",
        )
        raise StepFailed(str(exc)) from exc
    countdown = backoff_seconds(attempt, getattr(exc, "retry_after", None))
    _record_error(workflow, step, attempt, exc, retryable=True, retry_in=countdown)
    lease = timezone.now() + timedelta(seconds=countdown + settings.WORKFLOW_LEASE_SECONDS)
    Workflow.objects.filter(pk=workflow.pk).update(
        lease_expires_at=lease, last_error=f"{step}: {exc}"[:2000]
    )
    metrics.STEP_RETRIES.labels(step).inc()
    log.warning(
        "Retrying workflow %s step %s after attempt %s in %.1fs: %s",
        workflow.pk,
        step,
        attempt,
        countdown,
        type(exc).__name__,
        extra={
            "workflow_id": workflow.pk,
            "step": step,
            "attempt": attempt,
            "delay_s": round(countdown, 2),
            "duration_ms": round(duration * 1000),
        },
    )
    raise RetryLater(countdown, step, attempt) from exc


def _fail(
    workflow: Workflow,
    step: str,
    attempt: int,
    exc: BaseException,
    *,
    retryable: bool,
    why: str = "permanent error",
    actor: str | None = None,
) -> None:
    """End the workflow as failed with an error row (``retryable``: retries were exhausted, or
    the step used every attempt; else a permanent error) and the failure metric. The pipeline
    and the sweeper (``actor="sweeper"``) both end a workflow here."""
    message = f"{step} failed ({why}): {exc}"[:2000]
    with transaction.atomic():
        _record_error(workflow, step, attempt, exc, retryable=retryable)
        transition(
            workflow.pk,
            from_status=Status.RUNNING,
            to_status=Status.FAILED,
            reason=message,
            actor=actor,
            details={"step": step, "attempt": attempt, "error": type(exc).__name__},
            fields={"last_error": message, "claimed_by": ""},
        )
    metrics.WORKFLOW_FAILURES.labels(step, "exhausted" if retryable else "permanent").inc()
    # Why, for the engineer on call: HubSpot's status and category, not HubSpot's message
    # (it may quote the lead's property values; the workflow's last_error has it whole).
    log.error(
        "Workflow failed",
        extra={
            "workflow_id": workflow.pk,
            "step": step,
            "attempt": attempt,
            "error": type(exc).__name__,
            "why": why,
            "hubspot_status": getattr(exc, "status", None),
            "hubspot_category": getattr(exc, "category", None),
        },
    )
