"""At most one message per draft, whatever races, crashes or provider errors happen.

These tests need real commits (the send refuses to run inside a transaction), hence
transaction=True; threads get their own PostgreSQL connections.
"""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from outreach.models import Decision
from outreach.services import (
    SendDeferred,
    SendInProgress,
    draft_create,
    email_send,
    hand_off,
    resolve_unknown_send,
    workflow_approve,
)
from outreach.tests.backends import ScriptedBackend
from outreach.tests.conftest import draft_of, make_workflow, run_concurrently, status_of
from workflows.models import AuditEvent, Status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def scripted_provider(settings):
    settings.EMAIL_BACKEND = "outreach.tests.backends.ScriptedBackend"
    ScriptedBackend.failures = []
    yield ScriptedBackend
    ScriptedBackend.failures = []


def sending_workflow(**draft_fields):
    """A workflow an approval has just moved to `sending`."""
    workflow = make_workflow(Status.SENDING)
    draft = draft_create(workflow_id=workflow.pk)
    for name, value in {"decision": Decision.APPROVED, **draft_fields}.items():
        setattr(draft, name, value)
    draft.save()
    return workflow


def test_auto_send_sends_once_with_a_deterministic_message_id(send_mode):
    send_mode(auto_send=True)
    workflow = make_workflow()
    draft_create(workflow_id=workflow.pk)

    hand_off(workflow_id=workflow.pk)  # the send task runs on commit (eager in tests)

    assert status_of(workflow) == Status.SENT
    assert len(mail.outbox) == 1
    draft = draft_of(workflow)
    assert mail.outbox[0].extra_headers["Message-ID"] == f"<{draft.idempotency_key}@example.com>"
    assert draft.provider_message_id == f"<{draft.idempotency_key}@example.com>"
    assert (draft.sent_at is not None, draft.send_attempts) == (True, 1)
    sent_event = AuditEvent.objects.get(workflow=workflow, action="email.sent")
    assert draft.body not in str(sent_event.details)


def test_approve_racing_auto_send_sends_one_message(send_mode, operator):
    send_mode(auto_send=True)
    workflow = make_workflow()
    draft_create(workflow_id=workflow.pk)

    def auto_send():
        hand_off(workflow_id=workflow.pk)
        return email_send(workflow_id=workflow.pk)

    def approve():
        result = workflow_approve(workflow_id=workflow.pk, user=operator)
        if result.ok:  # only a winning approval goes on to send
            email_send(workflow_id=workflow.pk)
        return result

    auto, approval = run_concurrently(auto_send, approve)

    # auto-send never waits for approval, so the approval loses and is told why
    assert not isinstance(auto, Exception), auto
    assert not approval.ok and approval.message
    assert len(mail.outbox) == 1
    assert status_of(workflow) == Status.SENT


def test_double_click_approve_sends_once_and_tells_the_loser(send_mode, operator):
    workflow = make_workflow(Status.AWAITING_APPROVAL)
    draft_create(workflow_id=workflow.pk)

    results = run_concurrently(
        lambda: workflow_approve(workflow_id=workflow.pk, user=operator),
        lambda: workflow_approve(workflow_id=workflow.pk, user=operator),
    )

    assert sorted(r.ok for r in results) == [False, True]
    loser = next(r for r in results if not r.ok)
    assert loser.message.startswith("Already approved by olivia at ")
    assert len(mail.outbox) == 1
    assert status_of(workflow) == Status.SENT


def test_two_workers_handed_the_same_send_send_once(send_mode):
    workflow = sending_workflow()

    results = run_concurrently(
        lambda: email_send(workflow_id=workflow.pk), lambda: email_send(workflow_id=workflow.pk)
    )

    assert len(mail.outbox) == 1
    assert "sent" in results
    assert status_of(workflow) == Status.SENT


def test_a_retry_after_a_crash_mid_send_goes_unknown_and_does_not_resend(send_mode):
    # The claim committed, then the worker died before recording the outcome.
    workflow = sending_workflow(
        send_attempts=1, send_claimed_at=timezone.now() - timedelta(hours=1)
    )

    assert email_send(workflow_id=workflow.pk) == "send_unknown"

    assert mail.outbox == []
    assert status_of(workflow) == Status.SEND_UNKNOWN
    assert email_send(workflow_id=workflow.pk).startswith("skipped")
    assert mail.outbox == []


def test_a_fresh_claim_by_another_worker_is_left_alone(send_mode):
    workflow = sending_workflow(send_attempts=1, send_claimed_at=timezone.now())

    with pytest.raises(SendInProgress):
        email_send(workflow_id=workflow.pk)

    assert mail.outbox == []
    assert status_of(workflow) == Status.SENDING


def test_the_gate_is_checked_again_right_before_sending(settings):
    workflow = sending_workflow()  # settings are draft-only: the mode changed since approval

    assert email_send(workflow_id=workflow.pk) == "completed: not sent"

    assert mail.outbox == []
    assert status_of(workflow) == Status.COMPLETED
    assert "MODE_DRAFT_ONLY=true" in draft_of(workflow).gate_reason


def test_sending_inside_a_transaction_is_refused(send_mode):
    workflow = sending_workflow()

    with pytest.raises(RuntimeError, match="open transaction"), transaction.atomic():
        email_send(workflow_id=workflow.pk)

    assert mail.outbox == []
    assert draft_of(workflow).send_attempts == 0


def test_a_transient_refusal_is_retried_and_then_sends(send_mode, scripted_provider):
    workflow = sending_workflow()
    scripted_provider.failures = [ConnectionRefusedError("smtp down")]

    with pytest.raises(SendDeferred):
        email_send(workflow_id=workflow.pk)
    assert (draft_of(workflow).send_failures, status_of(workflow)) == (1, Status.SENDING)

    assert email_send(workflow_id=workflow.pk) == "sent"
    assert len(mail.outbox) == 1
    assert draft_of(workflow).send_attempts == 2


def test_a_permanent_refusal_fails_without_retrying(send_mode, scripted_provider):
    workflow = sending_workflow()
    scripted_provider.failures = [
        smtplib.SMTPRecipientsRefused({"sales@company.com": (550, b"no such user")})
    ]

    assert email_send(workflow_id=workflow.pk) == "failed"

    assert status_of(workflow) == Status.FAILED
    assert "550" in draft_of(workflow).last_send_error


def test_transient_refusals_stop_after_three_attempts(send_mode, scripted_provider):
    workflow = sending_workflow()
    scripted_provider.failures = [smtplib.SMTPDataError(451, b"try later")] * 3

    for _ in range(2):
        with pytest.raises(SendDeferred):
            email_send(workflow_id=workflow.pk)
    assert email_send(workflow_id=workflow.pk) == "failed"
    assert mail.outbox == []


def test_a_timeout_is_unknown_and_never_resent(send_mode, scripted_provider, operator):
    workflow = sending_workflow()
    scripted_provider.failures = [TimeoutError("timed out after DATA")]

    assert email_send(workflow_id=workflow.pk) == "send_unknown"
    assert email_send(workflow_id=workflow.pk).startswith("skipped")
    assert mail.outbox == []

    result = resolve_unknown_send(
        workflow_id=workflow.pk, user=operator, sent=True, note="Found it in the ESP log"
    )
    assert result.ok and status_of(workflow) == Status.SENT
    assert draft_of(workflow).sent_at is not None
