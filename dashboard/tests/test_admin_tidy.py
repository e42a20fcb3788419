"""The admin tidied (issue #15): read-only records offer no Save or Delete, "last error" shows
only while it is current, the actions speak the dashboard's words, and "#N" is a workflow."""

from __future__ import annotations

import pytest
from django.urls import reverse

from intake.models import FormSubmission, Lead
from workflows.messages import replay_text
from workflows.models import AuditEvent, Status, Workflow, WorkflowError
from workflows.transitions import transition

pytestmark = pytest.mark.django_db


def _change_page(client, obj) -> str:
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


@pytest.fixture
def superuser_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    return client


def test_read_only_records_have_no_save_or_delete(superuser_client, workflow_factory):
    workflow = workflow_factory()
    WorkflowError.objects.create(
        workflow=workflow,
        step="resolve_contact",
        attempt=1,
        exception_type="X",
        message="m",
        retryable=False,
    )
    records = [
        workflow,
        workflow.submission,
        workflow.draft,
        WorkflowError.objects.get(),
        AuditEvent.objects.create(action="x", object_type="workflow", object_id=str(workflow.pk)),
        Lead.objects.create(id=workflow.submission_id),
    ]
    for record in records:
        page = _change_page(superuser_client, record)
        assert 'name="_save"' not in page, record
        assert "deletelink" not in page, record
        opts = record._meta
        delete = reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[record.pk])
        assert superuser_client.post(delete, {"post": "yes"}).status_code == 403, record


def test_the_workflow_list_offers_no_delete_action(superuser_client, workflow_factory):
    workflow_factory()
    form = superuser_client.get(reverse("admin:workflows_workflow_changelist")).context[
        "action_form"
    ]
    actions = set(dict(form.fields["action"].choices))
    assert "delete_selected" not in actions
    assert {"approve_selected", "reject_selected", "replay_selected"} <= actions


def _last_error_shown(client, workflow: Workflow) -> str:
    page = _change_page(client, workflow)
    start = page.index("Last error")
    return page[start : start + 400]


def test_last_error_shows_while_retrying_and_not_after_success(superuser_client, workflow_factory):
    workflow = workflow_factory(status=Status.RUNNING, last_error="resolve_contact: timeout")
    assert "resolve_contact: timeout" in _last_error_shown(superuser_client, workflow)

    transition(
        workflow.pk,
        from_status=Status.RUNNING,
        to_status=Status.AWAITING_APPROVAL,
        reason="drafted",
    )
    workflow.refresh_from_db()
    assert workflow.last_error == "resolve_contact: timeout"  # the column keeps it...
    assert "resolve_contact: timeout" not in _last_error_shown(superuser_client, workflow)
    # ...and the admin says nothing: the error list below still has the history.


def test_last_error_shows_when_it_is_why_the_workflow_ended(superuser_client, workflow_factory):
    reason = "duplicate of workflow #1 (lead 1): contact 5 already has a workflow"
    workflow = workflow_factory(status=Status.RUNNING)
    transition(
        workflow.pk,
        from_status=Status.RUNNING,
        to_status=Status.COMPLETED,
        reason=reason,
        fields={"last_error": reason},
    )
    assert reason in _last_error_shown(superuser_client, Workflow.objects.get(pk=workflow.pk))


def test_failed_shows_its_error(superuser_client, workflow_factory):
    workflow = workflow_factory(status=Status.FAILED, last_error="create_crm_task failed: 400")
    assert "create_crm_task failed: 400" in _last_error_shown(superuser_client, workflow)


def test_admin_replay_says_what_the_dashboard_says(operator_client, workflow_factory):
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

    failed, waiting = workflow_factory(status=Status.FAILED), workflow_factory()
    data = {"action": "replay_selected", ACTION_CHECKBOX_NAME: [failed.pk, waiting.pk]}
    admin_says = [
        str(m)
        for m in operator_client.post(
            reverse("admin:workflows_workflow_changelist"), data, follow=True
        ).context["messages"]
    ]
    replay = Workflow.objects.get(replay_of=failed)
    assert admin_says == [
        f"Replaying 1 workflow(s) as #{replay.pk}; 1 not replayed (#{waiting.pk}: still "
        "“Awaiting approval” (awaiting_approval); it has not ended, so there is nothing to "
        "replay yet)."
    ]
    dashboard_says = operator_client.post(
        reverse("dashboard:replay_selected"), {"ids": [failed.pk]}, HTTP_HX_REQUEST="true"
    )
    assert "not replayed" in dashboard_says.content.decode()  # the same wording, from one place
    assert replay.pk and replay_text.__module__ == "workflows.messages"


def test_a_submission_is_labelled_and_hash_numbers_are_workflows(
    superuser_client, workflow_factory
):
    workflow = workflow_factory()
    listing = superuser_client.get(reverse("admin:workflows_workflow_changelist")).content.decode()
    submission = FormSubmission.objects.get()
    assert f"Submission {submission.pk} (" in listing
    assert f"#{submission.pk} " not in listing.replace(f"#{workflow.pk} ", "")
