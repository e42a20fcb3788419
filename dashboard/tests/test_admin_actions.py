"""Admin actions on workflows call the same services as the dashboard."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from workflows.models import AuditEvent, Status, Trigger, Workflow

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:workflows_workflow_changelist")


def _act(client, action, workflows, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [w.pk for w in workflows], **extra}
    return client.post(CHANGELIST, data, follow=True)


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_admin_approve_decides_each_and_reports_races(operator_client, workflow_factory):
    waiting, done = workflow_factory(), workflow_factory(status=Status.REJECTED)
    page = _act(operator_client, "approve_selected", [waiting, done])
    assert "Thanks for reaching out" in page.content.decode()  # the text is shown first
    assert waiting.status == Status.AWAITING_APPROVAL
    versions = {f"version_{w.pk}": 1 for w in (waiting, done)}
    response = _act(operator_client, "approve_selected", [waiting, done], apply="yes", **versions)
    waiting.refresh_from_db()
    assert waiting.status == Status.COMPLETED
    assert AuditEvent.objects.filter(
        workflow=waiting, to_status=Status.APPROVED, actor="olivia"
    ).exists()
    text = " ".join(_messages(response))
    assert f"#{waiting.pk}: Approved" in text
    assert f"#{done.pk}: Already rejected" in text


def test_admin_reject_asks_for_a_reason_first(operator_client, workflow_factory):
    workflow = workflow_factory()
    page = _act(operator_client, "reject_selected", [workflow])
    assert page.status_code == 200
    assert b"Reason" in page.content
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL

    _act(operator_client, "reject_selected", [workflow], apply="yes", reason="")
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL


def test_admin_reject_with_a_reason_rejects(operator_client, workflow_factory):
    workflow = workflow_factory()
    response = _act(
        operator_client,
        "reject_selected",
        [workflow],
        apply="yes",
        reason="Competitor",
        **{f"version_{workflow.pk}": 1},
    )
    workflow.refresh_from_db()
    assert workflow.status == Status.REJECTED
    event = AuditEvent.objects.get(workflow=workflow, to_status=Status.REJECTED)
    assert event.reason == "Competitor"
    assert any("Rejected" in m for m in _messages(response))


def test_admin_replay_creates_new_runs(operator_client, workflow_factory):
    failed = workflow_factory(status=Status.FAILED)
    response = _act(operator_client, "replay_selected", [failed])
    replay = Workflow.objects.get(replay_of=failed)
    assert replay.trigger == Trigger.REPLAY and replay.status == Status.PENDING
    assert AuditEvent.objects.filter(workflow=replay, action="workflow.replayed").exists()
    assert any(f"#{replay.pk}" in m for m in _messages(response))


def test_admin_actions_are_hidden_without_permissions(client, django_user_model):
    user = django_user_model.objects.create_user("vera", is_staff=True)
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="view_workflow"))
    client.force_login(user)
    form = client.get(CHANGELIST).context["action_form"]
    actions = set(dict(form.fields["action"].choices)) if form else set()
    assert not {"approve_selected", "reject_selected", "replay_selected"} & actions
