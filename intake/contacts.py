"""HubSpot's contact lifecycle events: privacy deletion, merge, deletion.

They arrive as Webhooks API events beside leads and are applied in the transaction that
stores them (intake/services.py). Each is idempotent: a redelivery changes nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from intake.identity import contact_key, lead_claim_contact
from intake.models import FormSubmission, LeadKey, NonLeadDelivery, NonLeadOutcome
from outreach.erasure import ERASED, drafts_erase, recipient_sends_erase
from outreach.models import EmailDraft
from outreach.services import reject_waiting
from workflows import audit
from workflows.models import TERMINAL_STATUSES, AuditEvent, Status, Workflow, WorkflowError
from workflows.transitions import transition

#: Seconds after a step's lease runs out before a privacy deletion erases once more.
ERASE_AGAIN_MARGIN = 30

#: How an open workflow is stopped: the move that ends it from each status.
_STOP = {
    Status.RUNNING: Status.COMPLETED,
    Status.AWAITING_APPROVAL: Status.REJECTED,
    Status.APPROVED: Status.COMPLETED,
}
#: The statuses contact_stop ends (a pending one is first claimed, then completed).
_OPEN = (Status.PENDING, *_STOP)


def submissions_of_contact(contact_id: str) -> QuerySet[FormSubmission]:
    """Every stored delivery of this contact: by its contact id, by the lead that holds the
    contact's key, by a workflow that resolved to it, and every delivery of those leads or
    with their email addresses (a Forms post not yet resolved has only the email)."""
    direct = FormSubmission.objects.filter(
        Q(shape="workflow", object_id=contact_id)
        | Q(shape="event", object_id=contact_id, event_type__startswith="contact.")
        | Q(lead_id__in=LeadKey.objects.filter(key=contact_key(contact_id)).values("lead_id"))
        | Q(pk__in=Workflow.objects.filter(contact_id=contact_id).values("submission_id"))
    )
    leads = {lead for lead in direct.values_list("lead_id", flat=True) if lead is not None}
    emails = {email for email in direct.values_list("email", flat=True) if email}
    return FormSubmission.objects.filter(
        Q(pk__in=direct.values("pk")) | Q(lead_id__in=leads) | Q(email__in=emails)
    )


def contact_stop(*, contact_id: str, reason: str) -> list[int]:
    """End every open workflow of this contact, with ``reason``: no draft or CRM task is
    made for it afterwards, and a draft already waiting is rejected. A workflow already
    sending is left to finish (its outcome is the provider's). Returns the stopped ids."""
    open_ids = Workflow.objects.filter(
        submission__in=submissions_of_contact(contact_id),
        status__in=_OPEN,
    ).values_list("pk", "status")
    return _workflows_stop(open_ids, reason=reason)


def _workflows_stop(workflows: Iterable[tuple[int, str]], *, reason: str) -> list[int]:
    """Stop each ``(id, status)`` whose status is in ``_OPEN``; the status is the one read,
    and every move is conditional on it still being so. Returns the stopped ids."""
    stopped = []
    for workflow_id, status in workflows:
        if status not in _OPEN:
            continue
        if status == Status.PENDING:
            # Claimed by intake (not by a worker) so that no worker takes it in between.
            won = transition(
                workflow_id,
                from_status=Status.PENDING,
                to_status=Status.RUNNING,
                actor="hubspot",
                reason=reason,
                fields={"claimed_by": "intake", "lease_expires_at": None},
            )
            if not won:
                continue
            status = Status.RUNNING
        fields = {"claimed_by": "", "last_error": reason}
        if status == Status.AWAITING_APPROVAL:
            # A rejection like an operator's: the draft records the decision too.
            won = reject_waiting(workflow_id, reason=reason, actor="hubspot", fields=fields)
        else:
            won = transition(
                workflow_id,
                from_status=status,
                to_status=_STOP[status],
                actor="hubspot",
                reason=reason,
                fields=fields,
            )
        if won:
            stopped.append(workflow_id)
    return stopped


def contact_merge(*, primary_id: str, merged_ids: Iterable[str]) -> str:
    """Point the open workflows of the merged contacts at the primary contact, and give the
    primary's key to their lead when no other lead holds it."""
    merged = [m for m in merged_ids if m != primary_id]
    open_workflows = Workflow.objects.filter(contact_id__in=merged).exclude(
        status__in=TERMINAL_STATUSES
    )
    moved = []
    for workflow in open_workflows.only("pk", "contact_id", "submission__lead_id").select_related(
        "submission"
    ):
        Workflow.objects.filter(pk=workflow.pk).update(
            contact_id=primary_id, updated_at=timezone.now()
        )
        audit.record(
            action="contact.merged",
            object_type="workflow",
            object_id=workflow.pk,
            workflow_id=workflow.pk,
            actor="hubspot",
            reason=f"contact {workflow.contact_id} merged into {primary_id}",
        )
        if workflow.submission.lead_id:
            lead_claim_contact(lead_id=workflow.submission.lead_id, contact_id=primary_id)
        moved.append(workflow.pk)
    merged_text = ", ".join(merged)
    return f"contacts {merged_text} merged into {primary_id}: {len(moved)} open workflows moved"


def _erase_again_later(contact_id: str):
    def publish() -> None:
        from intake.tasks import erase_contact

        erase_contact.apply_async(
            args=[contact_id], countdown=settings.WORKFLOW_LEASE_SECONDS + ERASE_AGAIN_MARGIN
        )

    return publish


def contact_erase(*, contact_id: str, again: bool = False) -> str:
    """HubSpot's GDPR delete: erase this contact's personal data from Leadline.

    Open workflows are stopped first. Then, for every delivery of the contact
    (submissions_of_contact), the personal fields and the raw payload of the submission,
    its drafts' texts, its workflows' contact facts and error texts, and the texts of their
    audit rows are blanked. The rows stay (ids, times, statuses, counts, the contact id), so
    the dashboard's numbers do not change; the erasure itself is audited. Idempotent.
    """
    reason = f"contact {contact_id}: privacy deletion"
    submissions = list(submissions_of_contact(contact_id).values_list("pk", "lead_id"))
    submission_ids = [sid for sid, _ in submissions]
    lead_ids = {lead for _, lead in submissions if lead is not None}
    workflows = list(
        Workflow.objects.filter(submission_id__in=submission_ids).values_list("pk", "status")
    )
    workflow_ids = [pk for pk, _ in workflows]
    in_flight = any(status == Status.RUNNING for _, status in workflows)
    stopped = _workflows_stop(workflows, reason=reason)
    if in_flight and not again:
        # A worker inside a step may still write its result (contact facts, a draft) after
        # this commit; erase once more when every step's lease has run out.
        transaction.on_commit(_erase_again_later(contact_id))
    now = timezone.now()
    addresses = _addresses(submission_ids, workflow_ids)
    FormSubmission.objects.filter(pk__in=submission_ids).update(
        email="",
        email_error="",
        first_name="",
        last_name="",
        company="",
        phone="",
        message="",
        page_uri="",
        raw_payload={"erased": True},
        erased_at=now,
    )
    drafts = drafts_erase(workflow_ids=workflow_ids)
    Workflow.objects.filter(pk__in=workflow_ids).update(contact={}, last_error="", updated_at=now)
    WorkflowError.objects.filter(workflow_id__in=workflow_ids).update(message=ERASED, traceback="")
    audit_rows = AuditEvent.objects.filter(
        Q(workflow_id__in=workflow_ids)
        | Q(object_type="submission", object_id__in=[str(s) for s in submission_ids])
    )
    audit_rows.exclude(reason__in=["", reason]).update(reason=ERASED)
    audit_rows.update(details={})
    # Form keys are hashes of the email; they go too. Contact and conversion keys stay.
    LeadKey.objects.filter(lead_id__in=lead_ids, key__startswith="form:").delete()
    non_leads = _non_lead_deliveries(contact_id, addresses).update(raw_payload={"erased": True})
    cooldowns = recipient_sends_erase(addresses=addresses)
    summary = (
        f"erased contact {contact_id}: {len(submission_ids)} submissions, "
        f"{len(workflow_ids)} workflows ({len(stopped)} stopped), {drafts} drafts"
    )
    audit.record(
        action="contact.erased_again" if again else "contact.erased",
        object_type="contact",
        object_id=contact_id,
        actor="hubspot",
        reason=summary,
        details={
            "submissions": len(submission_ids),
            "workflows": len(workflow_ids),
            "stopped": len(stopped),
            "drafts": drafts,
            "non_lead_deliveries": non_leads,
            "recipient_sends": cooldowns,
        },
    )
    return summary


def _addresses(submission_ids: list[int], workflow_ids: list[int]) -> set[str]:
    """Every email address Leadline holds for these deliveries: as submitted, as HubSpot has
    it (the workflows' contact facts) and as drafted to."""
    addresses = set(
        FormSubmission.objects.filter(pk__in=submission_ids).values_list("email", flat=True)
    )
    addresses.update(
        EmailDraft.objects.filter(workflow_id__in=workflow_ids).values_list("recipient", flat=True)
    )
    for contact in Workflow.objects.filter(pk__in=workflow_ids).values_list("contact", flat=True):
        if isinstance(contact, dict) and isinstance(contact.get("email"), str):
            addresses.add(contact["email"])
    return {address.strip().lower() for address in addresses if address.strip()}


def _non_lead_deliveries(contact_id: str, addresses: set[str]) -> QuerySet[NonLeadDelivery]:
    """The kept non-lead deliveries that may hold the person's data: the contact events about
    this contact (a property change of its email, say; not a deal or company that shares its
    id) and the refused ones naming one of its addresses (a body that was no known shape, an
    unreadable event), where the address stands on its own (not inside a longer one). Ignored
    events of other objects are not searched. The refused rows are few, and purge keeps the
    table to its retention, so the scan stays short."""
    about = Q(object_id=contact_id) & (
        Q(event_type__startswith="contact.")
        | Q(event_type__startswith="object.", raw_payload__objectTypeId="0-1")
    )
    naming = Q(pk__in=[])
    for address in addresses:
        # not inside a longer address; a sentence's full stop may follow it
        pattern = rf"(^|[^A-Za-z0-9._%+-]){re.escape(address)}(?![A-Za-z0-9-]|\.[A-Za-z0-9])"
        naming |= Q(payload_text__iregex=pattern)
    return (
        NonLeadDelivery.objects.annotate(payload_text=Cast("raw_payload", TextField()))
        .filter(about | (Q(outcome=NonLeadOutcome.REFUSED) & naming))
        .exclude(raw_payload={"erased": True})
    )
