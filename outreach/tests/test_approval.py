from __future__ import annotations

import time

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from outreach.models import Decision, GateAction
from outreach.services import (
    ActionRefused,
    draft_create,
    draft_edit,
    hand_off,
    workflow_approve,
    workflow_reject,
)
from outreach.tests.conftest import draft_of, make_workflow, status_of
from workflows.models import AuditEvent, Status

pytestmark = pytest.mark.django_db


def test_draft_only_hand_off_waits_for_a_human_with_the_reason():
    workflow = make_workflow()
    draft_create(workflow_id=workflow.pk)

    decision = hand_off(workflow_id=workflow.pk)

    assert decision.action == GateAction.BLOCK
    assert status_of(workflow) == Status.AWAITING_APPROVAL
    assert "MODE_DRAFT_ONLY=true" in draft_of(workflow).gate_reason
    assert AuditEvent.objects.filter(workflow=workflow, action="gate.decision").exists()


def test_shadow_workflows_complete_without_sending(send_mode):
    send_mode(auto_send=True)
    workflow = make_workflow(shadow=True)
    draft_create(workflow_id=workflow.pk)

    hand_off(workflow_id=workflow.pk)

    assert status_of(workflow) == Status.COMPLETED
    assert mail.outbox == []


def test_send_mode_without_auto_send_holds_for_approval(send_mode):
    workflow = make_workflow()
    draft_create(workflow_id=workflow.pk)

    assert hand_off(workflow_id=workflow.pk).action == GateAction.HOLD
    assert status_of(workflow) == Status.AWAITING_APPROVAL


def test_approving_in_draft_only_completes_without_sending(waiting_workflow, operator):
    result = workflow_approve(workflow_id=waiting_workflow.pk, user=operator)

    assert result.ok
    assert status_of(waiting_workflow) == Status.COMPLETED
    draft = draft_of(waiting_workflow)
    assert draft.decision == Decision.APPROVED
    assert draft.approver == operator
    assert draft.decided_at is not None
    assert mail.outbox == []


def test_second_approval_loses_the_race_and_says_who_won(waiting_workflow, operator):
    workflow_approve(workflow_id=waiting_workflow.pk, user=operator)

    second = workflow_approve(workflow_id=waiting_workflow.pk, user=operator)

    assert not second.ok
    assert second.message.startswith("Already approved by olivia at ")


def test_an_edit_keeps_the_original_text_visible(waiting_workflow, operator):
    original = draft_of(waiting_workflow)

    draft_edit(
        workflow_id=waiting_workflow.pk, user=operator, subject="New subject", body="New body\n"
    )

    draft = draft_of(waiting_workflow)
    assert (draft.subject, draft.body) == ("New subject", "New body\n")
    assert (draft.original_subject, draft.original_body) == (original.subject, original.body)
    assert draft.was_edited and draft.edited_by == operator
    event = AuditEvent.objects.get(workflow=waiting_workflow, action="draft.edited")
    assert event.details["subject_changed"] is True
    assert "New body" not in str(event.details)


def test_approve_with_an_edit_applies_it(waiting_workflow, operator):
    workflow_approve(workflow_id=waiting_workflow.pk, user=operator, body="Short and sweet.\n")

    assert draft_of(waiting_workflow).body == "Short and sweet.\n"


def test_editing_after_the_decision_is_refused(waiting_workflow, operator):
    workflow_approve(workflow_id=waiting_workflow.pk, user=operator)

    with pytest.raises(ActionRefused, match="Already approved by olivia"):
        draft_edit(workflow_id=waiting_workflow.pk, user=operator, subject="x", body="y")


def test_reject_without_a_reason_is_refused(waiting_workflow, operator):
    with pytest.raises(ValidationError):
        workflow_reject(workflow_id=waiting_workflow.pk, user=operator, reason="  ")

    assert status_of(waiting_workflow) == Status.AWAITING_APPROVAL


def test_reject_records_the_reason(waiting_workflow, operator):
    result = workflow_reject(workflow_id=waiting_workflow.pk, user=operator, reason="Competitor")

    assert result.ok
    draft = draft_of(waiting_workflow)
    assert (draft.decision, draft.decision_reason) == (Decision.REJECTED, "Competitor")
    assert status_of(waiting_workflow) == Status.REJECTED


def test_a_user_without_the_permission_is_denied(waiting_workflow, django_user_model):
    intern = django_user_model.objects.create_user(username="ivan", password="pw-ivan-123")

    with pytest.raises(PermissionDenied):
        workflow_approve(workflow_id=waiting_workflow.pk, user=intern)
    with pytest.raises(PermissionDenied):
        workflow_reject(workflow_id=waiting_workflow.pk, user=intern, reason="no")
    with pytest.raises(PermissionDenied):
        draft_edit(workflow_id=waiting_workflow.pk, user=intern, subject="x", body="y")
    assert status_of(waiting_workflow) == Status.AWAITING_APPROVAL


def test_approval_in_draft_only_hands_the_text_to_the_rep_via_crm(
    waiting_workflow, operator, settings, django_capture_on_commit_callbacks
):
    settings.HUBSPOT_ACCESS_TOKEN = ""

    with django_capture_on_commit_callbacks(execute=True):
        workflow_approve(workflow_id=waiting_workflow.pk, user=operator)

    skipped = AuditEvent.objects.get(workflow=waiting_workflow, action="crm_note.skipped")
    assert "no HubSpot client configured" in skipped.reason


def test_the_admin_cannot_rewrite_a_draft_behind_the_services_back(admin_client):
    workflow = make_workflow(Status.APPROVED)
    draft = draft_create(workflow_id=workflow.pk)
    url = f"/admin/outreach/emaildraft/{draft.pk}/change/"
    assert admin_client.get(url).status_code == 200  # still viewable
    response = admin_client.post(url, {"subject": "changed", "body": "changed"})
    assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.subject == draft.original_subject


def test_a_note_retried_after_a_lost_answer_is_written_once(
    waiting_workflow, operator, settings, hubspot_sandbox
):
    from outreach.services import crm_note_write
    from workflows.hubspot.client import TransientHubSpotError

    sandbox = hubspot_sandbox
    settings.HUBSPOT_TIMEOUT_SECONDS = 0.5
    contact = sandbox.seed_contact(email="lead@example.com")
    waiting_workflow.contact_id = contact["id"]
    waiting_workflow.save(update_fields=["contact_id"])
    workflow_approve(workflow_id=waiting_workflow.pk, user=operator)  # on_commit not run here
    # HubSpot makes the note, but the answer never arrives: the client times out.
    sandbox.set_faults({"notes.create": {"kind": "timeout", "seconds": 1.5, "times": 1}})

    with pytest.raises(TransientHubSpotError):
        crm_note_write(workflow_id=waiting_workflow.pk)
    deadline = time.monotonic() + 5  # the task retries after ≥ 5 s; HubSpot has made it by then
    while not sandbox.sandbox.snapshot()["notes"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert crm_note_write(workflow_id=waiting_workflow.pk, retrying=True) == "note written"

    assert len(sandbox.requests("notes.create")) == 1  # the retry found it instead
    assert len(sandbox.requests("notes.search")) == 1
    assert len(sandbox.sandbox.snapshot()["notes"]) == 1
    notes = AuditEvent.objects.filter(workflow=waiting_workflow, action="crm_note.created")
    assert notes.count() == 1


def test_bulk_decisions_report_each_refusal_as_the_single_paths_do(waiting_workflow, operator):
    from outreach.services import workflows_decide

    undrafted = make_workflow(Status.RUNNING)
    first = workflows_decide(
        workflow_ids=[waiting_workflow.pk, undrafted.pk], user=operator, approve=True
    )
    assert [o.ok for o in first] == [True, False]
    assert first[1].message == "This workflow has no draft to decide on."
    [again] = workflows_decide(workflow_ids=[waiting_workflow.pk], user=operator, approve=True)
    assert not again.ok and again.message.startswith("Already approved by olivia at ")
