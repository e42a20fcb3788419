"""The workflow page: facts, timeline, draft edits, decisions, replay, unknown sends."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from outreach.models import EmailDraft
from workflows.models import AuditEvent, Status, Workflow, WorkflowError

pytestmark = pytest.mark.django_db


def url(name: str, workflow: Workflow) -> str:
    return reverse(f"dashboard:{name}", args=[workflow.pk])


def test_detail_shows_submission_payload_and_hubspot_links(operator_client, workflow_factory):
    workflow = workflow_factory(contact_id="901", task_id="77")
    html = operator_client.get(url("workflow_detail", workflow)).content.decode()
    assert "Ada Lovelace" in html and "Analytical Engines" in html
    assert "https://app.hubspot.com/contacts/62515/record/0-1/901" in html
    assert "https://app.hubspot.com/tasks/62515/view/all" in html
    assert "&quot;fields&quot;: [" in html  # pretty JSON, escaped
    # The gate's reason for an operator, the setting behind it on hover, no alarm colour.
    assert "Draft-only mode: nothing is sent. Approving marks it done and hands the text" in html
    assert 'title="Set by MODE_DRAFT_ONLY=true"' in html and "gate tone-normal" in html
    assert '<details id="raw-payload">' in html  # the raw payload starts collapsed


def test_detail_runs_a_bounded_number_of_queries(
    operator_client, workflow_factory, django_assert_max_num_queries
):
    workflow = workflow_factory(status=Status.FAILED)
    for attempt in range(5):
        WorkflowError.objects.create(
            workflow=workflow,
            step="resolve_contact",
            attempt=attempt,
            exception_type="Timeout",
            message="slow",
            retryable=True,
        )
    with django_assert_max_num_queries(10):
        operator_client.get(url("workflow_detail", workflow))


def test_timeline_merges_audit_steps_and_errors(operator_client, workflow_factory):
    now = timezone.now()
    workflow = workflow_factory(
        step_log={
            "resolve_contact": {
                "started_at": (now - dt.timedelta(seconds=30)).isoformat(),
                "finished_at": (now - dt.timedelta(seconds=28)).isoformat(),
                "attempts": 2,
                "note": "found by email",
            }
        }
    )
    WorkflowError.objects.create(
        workflow=workflow,
        step="resolve_contact",
        attempt=1,
        exception_type="HubSpotRateLimited",
        message="429 from HubSpot",
        traceback="Traceback (most recent call last):\n  <boom>",
        retryable=True,
    )
    AuditEvent.objects.create(
        actor="system",
        action="workflow.transition",
        object_type="workflow",
        object_id=str(workflow.pk),
        workflow=workflow,
        from_status="running",
        to_status="awaiting_approval",
    )
    html = operator_client.get(url("workflow_detail", workflow)).content.decode()
    assert "step resolve_contact finished in 2.00s" in html
    assert "found by email" in html
    assert "HubSpotRateLimited" in html
    assert "<details><summary>traceback</summary><pre>Traceback" in html
    assert "&lt;boom&gt;" in html
    assert "running → awaiting_approval" in html


def test_an_htmx_approval_swaps_the_new_status_in_place(operator_client, workflow_factory):
    workflow = workflow_factory()
    response = operator_client.post(
        url("workflow_approve", workflow), {"version": 1}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and html.lstrip().startswith('<div id="detail-body">')
    assert 'data-status="completed"' in html
    # The gate's reason in operator words, and what happened rather than what to do next.
    assert "Approved. Draft-only mode: nothing was sent" in html
    assert "What happened:" in html and "approve to complete" not in html


def test_approving_with_edits_keeps_the_original_and_shows_a_diff(
    operator_client, workflow_factory
):
    workflow = workflow_factory()
    response = operator_client.post(
        url("workflow_approve", workflow),
        {
            "subject": "Hello <Ada>",
            "body": "Hi Ada,\n\nLet's talk on Monday.\n\nBest,\nSam",
            "version": 1,
        },
    )
    assert response.status_code == 302
    draft = EmailDraft.objects.get(workflow=workflow)
    assert draft.subject == "Hello <Ada>" and draft.original_subject.startswith("Thanks")
    html = operator_client.get(url("workflow_detail", workflow)).content.decode()
    assert '<span class="d-add">+Subject: Hello &lt;Ada&gt;</span>' in html
    assert '<span class="d-del">-Thanks for your message.</span>' in html


def test_saving_an_edit_without_approving(operator_client, workflow_factory):
    workflow = workflow_factory()
    response = operator_client.post(
        url("draft_edit", workflow),
        {"subject": "New", "body": "Body", "version": 1},
        HTTP_HX_REQUEST="true",
    )
    assert b"Draft saved." in response.content
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL
    assert EmailDraft.objects.get(workflow=workflow).subject == "New"


def test_editing_a_decided_draft_is_refused(operator_client, workflow_factory):
    workflow = workflow_factory(status=Status.REJECTED)
    response = operator_client.post(
        url("draft_edit", workflow),
        {"subject": "New", "body": "Body", "version": 1},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 409
    assert response["HX-Retarget"] == "#flash"


def test_approving_a_workflow_without_a_draft_is_409_as_in_the_api(
    operator_client, workflow_factory
):
    workflow = workflow_factory(status=Status.RUNNING)
    EmailDraft.objects.filter(workflow=workflow).delete()
    response = operator_client.post(
        url("workflow_approve", workflow), {"version": 1}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    assert "has no draft" in response.content.decode()


def test_reject_needs_a_reason(operator_client, workflow_factory):
    workflow = workflow_factory()
    response = operator_client.post(url("workflow_reject", workflow), HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert b"Say why" in response.content
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL


def test_reject_with_a_reason(operator_client, workflow_factory):
    workflow = workflow_factory()
    response = operator_client.post(
        url("workflow_reject", workflow),
        {"reason": "Existing customer", "version": 1},
        HTTP_HX_REQUEST="true",
    )
    assert 'data-status="rejected"' in response.content.decode()
    assert b"Existing customer" in response.content


def test_second_approval_loses_the_race_and_is_told_who_won(operator_client, workflow_factory):
    workflow = workflow_factory()
    operator_client.post(url("workflow_reject", workflow), {"reason": "spam", "version": 1})
    response = operator_client.post(
        url("workflow_approve", workflow), {"version": 1}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "notice warning" in html and "Already rejected by olivia" in html


def test_replay_from_the_detail_page(operator_client, workflow_factory):
    workflow = workflow_factory(status=Status.FAILED)
    response = operator_client.post(
        url("workflow_replay", workflow), {"shadow": "on"}, HTTP_HX_REQUEST="true"
    )
    replay = Workflow.objects.get(replay_of=workflow)
    assert replay.shadow
    assert (
        f"Replaying 1 workflow(s) as #{replay.pk}, 1 in shadow mode (draft only, never sent)."
        in response.content.decode()
    )


def test_send_unknown_shows_a_banner_with_the_message_id(operator_client, workflow_factory):
    workflow = workflow_factory(status=Status.SEND_UNKNOWN)
    draft = EmailDraft.objects.get(workflow=workflow)
    html = operator_client.get(url("workflow_detail", workflow)).content.decode()
    assert 'id="send-unknown"' in html
    assert draft.idempotency_key in html
    assert "Mark as sent" in html and "Mark as not sent" in html


def test_a_long_running_send_also_shows_the_banner(operator_client, workflow_factory):
    workflow = workflow_factory(status=Status.SENDING)
    Workflow.objects.filter(pk=workflow.pk).update(
        updated_at=timezone.now() - dt.timedelta(minutes=30)
    )
    html = operator_client.get(url("workflow_detail", workflow)).content.decode()
    assert 'id="send-unknown"' in html


def test_marking_an_unknown_send_as_sent(operator_client, workflow_factory):
    workflow = workflow_factory(status=Status.SEND_UNKNOWN)
    response = operator_client.post(
        url("resolve_send", workflow),
        {"sent": "yes", "note": "found in ESP log"},
        HTTP_HX_REQUEST="true",
    )
    assert 'data-status="sent"' in response.content.decode()
    assert AuditEvent.objects.get(workflow=workflow, to_status="sent").reason == "found in ESP log"


def test_marking_an_unknown_send_needs_a_note(operator_client, workflow_factory):
    workflow = workflow_factory(status=Status.SEND_UNKNOWN)
    response = operator_client.post(url("resolve_send", workflow), {"sent": "no"})
    assert response.status_code == 400
    workflow.refresh_from_db()
    assert workflow.status == Status.SEND_UNKNOWN


def test_an_unknown_send_refused_says_exactly_what_is_missing(operator_client, workflow_factory):
    workflow = workflow_factory(status=Status.SEND_UNKNOWN)
    post = operator_client.post
    no_note = post(url("resolve_send", workflow), {"sent": "yes", "note": "  "}).content.decode()
    assert "note how you checked" in no_note and "sent or not" not in no_note
    no_choice = post(url("resolve_send", workflow), {"note": "checked"}).content.decode()
    assert "choose whether it was sent or not" in no_choice and "note how" not in no_choice
    neither = post(url("resolve_send", workflow), {}).content.decode()
    assert "choose whether it was sent or not and note how you checked" in neither
    html = operator_client.get(url("workflow_detail", workflow)).content.decode()
    form = html[html.index('action="/dashboard/workflows/') : html.index("Mark as not sent")]
    assert "required" in form and form.count("hx-post") == 1  # on the form, not the buttons


def test_unknown_workflow_is_404(operator_client):
    assert operator_client.get("/dashboard/workflows/999999/").status_code == 404


def test_a_refused_replay_from_the_detail_page_says_why_in_the_shared_wording(
    operator_client, workflow_factory
):
    workflow = workflow_factory(status=Status.FAILED)
    operator_client.post(url("workflow_replay", workflow), {}, HTTP_HX_REQUEST="true")
    response = operator_client.post(url("workflow_replay", workflow), {}, HTTP_HX_REQUEST="true")
    replay = Workflow.objects.get(replay_of=workflow)
    assert response.status_code == 409
    assert (
        f"1 not replayed (#{workflow.pk}: already replayed as #{replay.pk})."
        in response.content.decode()
    )
