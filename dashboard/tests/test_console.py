"""Issue #15's console, without a browser: operator wording, the operator's time zone (in the
dashboard and the admin alike), per-row inbox actions and what an empty match offers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from dashboard import texts
from dashboard.models import OperatorPreferences
from outreach.models import EmailDraft
from outreach.services import draft_edit
from workflows.models import Status, Workflow

pytestmark = pytest.mark.django_db


# --- Operator wording ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "starts", "setting", "tone"),
    [
        (
            "draft-only mode (MODE_DRAFT_ONLY=true): nothing is sent; approve to complete and "
            "hand the text to the rep",
            "Draft-only mode: nothing is sent. Approving marks it done and hands the text",
            "MODE_DRAFT_ONLY=true",
            "normal",
        ),
        (
            "API_ENV=staging: sending only happens in production",
            "Test environment",
            "API_ENV=staging",
            "normal",
        ),
        (
            "recipient is not on SEND_EMAIL_ALLOWLIST",
            "This address is not on the send allowlist",
            "SEND_EMAIL_ALLOWLIST",
            "attention",
        ),
        ("no valid recipient email", "The lead left no usable email address", "", "attention"),
        (
            "send mode: waiting for a human to approve",
            "Send mode: approving sends",
            "ALLOW_AUTO_SEND=false",
            "normal",
        ),
        (
            "AI draft (LLM_AUTO_SEND=false): waiting for a human to approve, although …",
            "A model wrote this draft",
            "LLM_AUTO_SEND=false, ALLOW_AUTO_SEND=true",
            "normal",
        ),
        (
            "recipient cooldown: emailed 2 h ago by #812; at most one email per 72 h per address",
            "This address was emailed recently (2 h ago)",
            "RECIPIENT_COOLDOWN_HOURS",
            "attention",
        ),
        ("shadow replay: drafted only, never sent", "Shadow replay", "", "normal"),
        ("something new", "Something new", "", "normal"),
    ],
)
def test_gate_reasons_read_as_operator_sentences(reason, starts, setting, tone):
    text = texts.gate_text(reason)
    assert text.text.startswith(starts)
    assert text.setting == setting
    assert text.tone == tone
    assert "approve to complete" not in text.text


def test_outcomes_say_what_happened(workflow_factory, operator):
    rejected = workflow_factory(status=Status.REJECTED)
    EmailDraft.objects.filter(workflow=rejected).update(
        decision="rejected", decision_reason="Spam", approver=operator, decided_at=timezone.now()
    )
    rejected.refresh_from_db()
    text = texts.outcome_text(rejected, rejected.draft)
    assert text.startswith("Rejected by olivia at ") and "“Spam”" in text
    assert "Nothing was sent" in text and "approve" not in text.lower().replace("approved", "")

    completed = workflow_factory(status=Status.COMPLETED)
    EmailDraft.objects.filter(workflow=completed).update(decision="approved", approver=operator)
    completed.refresh_from_db()
    assert "the text went to the rep as a note on the HubSpot contact" in texts.outcome_text(
        completed, completed.draft
    )
    failed = workflow_factory(status=Status.FAILED, attempts=3)
    assert "after 3 attempt(s); nothing was sent" in texts.outcome_text(failed, failed.draft)
    sent = workflow_factory(status=Status.SENT)
    assert texts.outcome_text(sent, sent.draft).startswith("Sent to the lead")
    assert texts.outcome_text(workflow_factory(), None) == ""  # still waiting: nothing to tell


def test_the_draft_label_names_the_drafter_and_the_editor(operator_client, workflow_factory):
    workflow = workflow_factory()
    url = reverse("dashboard:workflow_detail", args=[workflow.pk])
    html = operator_client.get(url).content.decode()
    assert "drafted by the template “default”" in html and "edited by" not in html
    operator = operator_client.get(url).wsgi_request.user
    draft_edit(workflow_id=workflow.pk, user=operator, subject="New", body="New body")
    html = operator_client.get(url).content.decode()
    assert '<span class="edited">edited by olivia</span>' in html and "version 2" in html


def test_replay_all_failed_is_disabled_with_a_reason_when_nothing_failed(
    operator_client, workflow_factory
):
    workflow_factory(status=Status.COMPLETED)
    html = operator_client.get("/dashboard/").content.decode()
    assert 'id="replay-failed" disabled' in html
    assert "Nothing failed matches this filter." in html
    workflow_factory(status=Status.FAILED)
    html = operator_client.get("/dashboard/?q=lead").content.decode()
    assert "Replay all failed matching this filter (1)" in html


def test_replay_all_failed_counts_what_it_would_replay(operator_client, workflow_factory):
    # Three failed rows, one of whose submission has a live run: the button offers two (what
    # failed_matching replays), the tab still counts three failed rows; after one press the
    # replayed rows are not offered again, and the button says why it is disabled.
    failed = [workflow_factory(status=Status.FAILED) for _ in range(3)]
    Workflow.objects.create(submission=failed[0].submission, status=Status.RUNNING)
    response = operator_client.get("/dashboard/")
    html = response.content.decode()
    assert "Replay all failed matching this filter (2)" in html
    assert {t["status"]: t["count"] for t in response.context["tabs"]}["failed"] == "3"
    operator_client.post(reverse("dashboard:replay_failed"), {"confirm": "on"})
    html = operator_client.get("/dashboard/").content.decode()
    assert 'id="replay-failed" disabled' in html
    assert "Every failed match has been replayed or has a run still going." in html


def test_an_empty_list_says_why(operator_client):
    overview = operator_client.get("/dashboard/overview/").content.decode()
    assert "No submissions in the last 7 days yet" in overview
    html = operator_client.get("/dashboard/").content.decode()
    assert "No workflows yet: they appear here as HubSpot form submissions arrive." in html
    html = operator_client.get("/dashboard/?q=nobody").content.decode()
    assert "No workflows match this filter." in html


# --- Time zone -------------------------------------------------------------------------------


def test_times_are_shown_in_the_operators_zone_with_the_zone_named(
    operator_client, workflow_factory
):
    workflow = workflow_factory(age=dt.timedelta(minutes=5))
    url = reverse("dashboard:workflow_detail", args=[workflow.pk])
    utc = timezone.localtime(workflow.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M")
    html = operator_client.get(url).content.decode()
    assert f"{utc} UTC" in html and "(5m ago)" in html

    response = operator_client.post("/dashboard/preferences/", {"time_zone": "America/New_York"})
    assert response.status_code == 302
    assert OperatorPreferences.objects.get().time_zone == "America/New_York"
    zone = dt.timezone(timezone.localtime(workflow.created_at, _ny()).utcoffset())
    local = timezone.localtime(workflow.created_at, zone).strftime("%Y-%m-%d %H:%M")
    html = operator_client.get(url).content.decode()
    assert local in html and ("EST" in html or "EDT" in html)
    assert "America/New_York" in html  # the zone named in the top bar and on hover


def _ny():
    import zoneinfo

    return zoneinfo.ZoneInfo("America/New_York")


def test_an_unknown_zone_is_refused(operator_client):
    response = operator_client.post("/dashboard/preferences/", {"time_zone": "Mars/Olympus"})
    assert response.status_code == 400
    assert "is not an IANA time zone name" in response.content.decode()
    assert not OperatorPreferences.objects.exists()


def test_the_zone_is_read_at_login_not_on_every_page(client, operator, workflow_factory):
    OperatorPreferences.objects.create(user=operator, time_zone="Asia/Tokyo")
    client.force_login(operator)  # the login signal puts the zone in the session
    assert client.session["operator_time_zone"] == "Asia/Tokyo"
    html = client.get("/dashboard/preferences/").content.decode()
    assert "Asia/Tokyo (JST)" in html


def test_the_admin_uses_the_same_format_and_zone(client, django_user_model, workflow_factory):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    OperatorPreferences.objects.create(user=admin, time_zone="Asia/Tokyo")
    workflow = workflow_factory()
    client.force_login(admin)
    html = client.get(reverse("admin:workflows_workflow_changelist")).content.decode()
    tokyo = timezone.localtime(workflow.created_at, dt.timezone(dt.timedelta(hours=9)))
    assert f"{tokyo:%Y-%m-%d %H:%M} JST" in html


# --- Inbox rows ------------------------------------------------------------------------------


def _row_post(client, name, workflow, **data):
    return client.post(
        reverse(f"dashboard:{name}", args=[workflow.pk]),
        {"inbox_row": "1", **data},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET=f"row-{workflow.pk}",
    )


def test_the_inbox_shows_preview_owner_age_and_gate(operator_client, workflow_factory):
    workflow_factory(owner_id="owner-9", age=dt.timedelta(minutes=20))
    html = operator_client.get("/dashboard/inbox/").content.decode()
    assert '<div class="preview-subject">Thanks for reaching out, Ada</div>' in html
    assert "Thanks for your message." in html  # the first lines, without a click
    assert "owner <span" in html and "owner-9" in html
    assert "20m" in html and "Draft-only mode: nothing is sent." in html
    assert 'data-action="approve"' in html and 'data-action="reject"' in html
    assert 'data-action="edit"' in html and 'id="keys-help"' in html


def test_a_row_approve_answers_the_row_decided(operator_client, workflow_factory):
    workflow = workflow_factory()
    response = _row_post(operator_client, "workflow_approve", workflow, version=1)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<tr class="row-done" id="row-{workflow.pk}"')
    assert 'data-done="approved"' in html and "Draft-only mode: nothing was sent" in html
    workflow.refresh_from_db()
    assert workflow.status == Status.COMPLETED


def test_a_row_reject_needs_a_reason_and_answers_the_row(operator_client, workflow_factory):
    workflow = workflow_factory()
    response = _row_post(operator_client, "workflow_reject", workflow, version=1)
    assert response.status_code == 400
    assert response["HX-Retarget"] == "#flash"
    response = _row_post(operator_client, "workflow_reject", workflow, version=1, reason="Spam")
    assert response.status_code == 200 and 'data-done="rejected"' in response.content.decode()


def test_a_row_edit_answers_the_row_with_the_new_version(operator_client, workflow_factory):
    workflow = workflow_factory()
    response = _row_post(
        operator_client, "draft_edit", workflow, version=1, subject="Better", body="Hi"
    )
    html = response.content.decode()
    assert '<tr class="inbox-row"' in html and "Better" in html
    assert 'name="version" value="2"' in html and "edited by olivia" in html
    # The row's own buttons now carry version 2; the stale version 1 is refused.
    stale = _row_post(operator_client, "workflow_approve", workflow, version=1)
    assert stale.status_code == 409 and stale["HX-Retarget"] == "#flash"
    assert _row_post(operator_client, "workflow_approve", workflow, version=2).status_code == 200


def test_a_viewer_sees_no_row_actions(viewer_client, workflow_factory):
    workflow = workflow_factory()
    response = viewer_client.get("/dashboard/inbox/")
    html = response.content.decode()
    assert response.status_code == 200 and f'id="row-{workflow.pk}"' in html  # sees the row
    assert 'data-action="approve"' not in html and 'data-action="reject"' not in html
    assert Group.objects.filter(name="Viewers").exists()
