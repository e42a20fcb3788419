"""At most one email per recipient per RECIPIENT_COOLDOWN_HOURS, whatever the path.

The guarantee of last resort: every test here builds two *different* workflows (two submissions,
so no identity check upstream links them) to one address. The clock is injected, never slept.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from outreach import cooldown, gate
from outreach.models import GateAction, RecipientSend
from outreach.services import draft_create, email_send, hand_off, workflow_approve
from outreach.tests.conftest import draft_of, make_workflow, run_concurrently, status_of
from workflows.models import AuditEvent, Status, Workflow
from workflows.services import workflows_replay

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    def __init__(self) -> None:
        self.now = timezone.now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch, settings):
    settings.RECIPIENT_COOLDOWN_HOURS = 72
    fake = Clock()
    monkeypatch.setattr(cooldown, "clock", fake)
    return fake


def auto_sent(email: str = "sales@company.com", **fields):
    """A new submission by ``email`` drafted and handed to the gate (auto-send sends eagerly)."""
    workflow = make_workflow(email=email, **fields)
    draft_create(workflow_id=workflow.pk)
    hand_off(workflow_id=workflow.pk)
    return workflow


def test_auto_send_emails_an_address_once_per_cooldown_and_holds_the_second(send_mode, clock):
    send_mode(auto_send=True)
    first = auto_sent()
    clock.advance(hours=2)
    second = auto_sent(email="Sales@Company.com ")  # normalised: the same recipient

    assert len(mail.outbox) == 1
    assert status_of(first) == Status.SENT
    assert status_of(second) == Status.AWAITING_APPROVAL
    draft = draft_of(second)
    assert draft.gate_action == GateAction.HOLD
    assert f"emailed 2 h ago by #{first.pk}" in draft.gate_reason
    held = AuditEvent.objects.get(workflow=second, to_status=Status.AWAITING_APPROVAL)
    assert f"emailed 2 h ago by #{first.pk}" in held.reason


def test_after_the_cooldown_a_send_goes_through(send_mode, clock, operator):
    send_mode(auto_send=True)
    auto_sent()
    clock.advance(hours=1)
    second = auto_sent()
    assert status_of(second) == Status.AWAITING_APPROVAL

    clock.advance(hours=71, minutes=1)
    result = workflow_approve(workflow_id=second.pk, user=operator)

    assert result.ok and status_of(second) == Status.SENT
    assert len(mail.outbox) == 2


def test_approval_inside_the_cooldown_is_held_again_with_the_reason(send_mode, clock, operator):
    auto_sent_first = make_workflow(Status.AWAITING_APPROVAL)
    other = make_workflow(Status.AWAITING_APPROVAL)
    for workflow in (auto_sent_first, other):
        draft_create(workflow_id=workflow.pk)
    assert workflow_approve(workflow_id=auto_sent_first.pk, user=operator).ok
    clock.advance(minutes=30)
    workflow_approve(workflow_id=other.pk, user=operator)

    assert len(mail.outbox) == 1
    assert status_of(other) == Status.AWAITING_APPROVAL
    assert f"emailed 30 min ago by #{auto_sent_first.pk}" in draft_of(other).gate_reason


def test_the_admin_approval_passes_through_the_cooldown(send_mode, clock, operator, client):
    send_mode(auto_send=True)
    first = auto_sent()
    send_mode(auto_send=False)
    waiting = make_workflow(Status.AWAITING_APPROVAL)
    draft_create(workflow_id=waiting.pk)
    # A flushed database (transactional test) lost the migration's grant of admin views.
    operator.user_permissions.add(Permission.objects.get(codename="view_workflow"))
    client.force_login(operator)
    changelist = reverse("admin:workflows_workflow_changelist")
    data = {
        "action": "approve_selected",
        ACTION_CHECKBOX_NAME: [waiting.pk],
        "apply": "1",
        f"version_{waiting.pk}": "1",
    }
    assert client.post(changelist, data, follow=True).status_code == 200

    assert len(mail.outbox) == 1
    assert status_of(waiting) == Status.AWAITING_APPROVAL
    assert f"by #{first.pk}" in draft_of(waiting).gate_reason


def test_a_replay_of_another_submission_passes_through_the_cooldown(send_mode, clock):
    send_mode(auto_send=True)
    first = auto_sent()
    failed = make_workflow(Status.FAILED)  # another submission by the same lead
    # The replay runs its pipeline on commit (eager Celery): draft, gate, send claim.
    (replay_id,) = workflows_replay(workflow_ids=[failed.pk]).created
    replay = Workflow.objects.get(pk=replay_id)
    assert replay.status == Status.AWAITING_APPROVAL

    assert len(mail.outbox) == 1
    assert f"by #{first.pk}" in draft_of(replay).gate_reason


def test_a_redelivered_send_of_the_same_workflow_is_not_held_by_itself(send_mode, clock):
    send_mode(auto_send=True)
    workflow = auto_sent()
    assert email_send(workflow_id=workflow.pk).startswith("skipped")
    assert len(mail.outbox) == 1
    assert RecipientSend.objects.get().workflow_id == workflow.pk


def test_two_concurrent_sends_to_one_address_send_once(send_mode, clock):
    from outreach.models import Decision

    workflows = [make_workflow(Status.SENDING) for _ in range(2)]
    for workflow in workflows:
        draft = draft_create(workflow_id=workflow.pk)
        draft.decision = Decision.APPROVED
        draft.save()

    results = run_concurrently(*(lambda w=w: email_send(workflow_id=w.pk) for w in workflows))

    assert len(mail.outbox) == 1
    assert sorted(r.split(":")[0] for r in results) == ["held", "sent"]


def test_zero_turns_the_cooldown_off(send_mode, clock, settings):
    settings.RECIPIENT_COOLDOWN_HOURS = 0
    send_mode(auto_send=True)
    auto_sent()
    auto_sent()
    assert len(mail.outbox) == 2
    assert not RecipientSend.objects.exists()


@pytest.mark.parametrize(
    "address",
    ["sales@company.com", " Sales@Company.COM\t", "a.b+tag@sub.company.com", "O'Brien@x.io"],
)
def test_the_same_recipient_is_the_gates_same_address(address):
    assert gate.normalise_address(address) is not None  # one the gate lets through
    assert cooldown.normalise(address) == gate.normalise_address(address)
    assert cooldown.normalise(address) == address.strip().lower()  # as the cooldown always keyed
