"""Issue #14: lead text goes into HubSpot task and note bodies escaped (HubSpot renders them
as rich text), through the sandbox over real HTTP."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from intake.models import FormSubmission
from outreach.models import EmailDraft
from workflows import crm_html
from workflows.models import Status, Workflow
from workflows.tests.test_pipeline import crm, run_until_done  # noqa: F401

HOSTILE_NAME = '<a href="https://evil.example/sso">Approve</a>'
HOSTILE_COMPANY = "<img src=https://evil.example/beacon.png> & Co"


def test_paragraphs_escape_markup_and_keep_line_breaks():
    assert crm_html.paragraph('a <b>"x"</b> & y\nz') == (
        "<p>a &lt;b&gt;&quot;x&quot;&lt;/b&gt; &amp; y<br>z</p>"
    )
    assert crm_html.paragraphs("one\n\n\ntwo\nthree") == "<p>one</p><p>two<br>three</p>"
    assert crm_html.link_paragraph("See", 'https://x.example/?a=1&b="2"') == (
        '<p>See: <a href="https://x.example/?a=1&amp;b=&quot;2&quot;">'
        "https://x.example/?a=1&amp;b=&quot;2&quot;</a></p>"
    )


def new_workflow(**fields) -> Workflow:
    submission = FormSubmission.objects.create(
        dedupe_key=f"test:{uuid.uuid4().hex}",
        shape="forms",
        signature_version="v3",
        raw_payload={},
        email="lead@acme.test",
        last_name="Lead",
        form_id="contact-us",
        received_at=timezone.now(),
        **fields,
    )
    return Workflow.objects.create(submission=submission)


def assert_inert(body: str) -> None:
    assert '<a href="https://evil' not in body and "<img" not in body
    assert "&lt;a href=&quot;https://evil.example/sso&quot;&gt;" in body or (
        "&lt;img src=https://evil.example/beacon.png&gt;" in body
    )


@pytest.mark.django_db
def test_the_task_body_escapes_every_lead_value(crm):  # noqa: F811
    crm.seed_contact(
        email="lead@acme.test", firstname=HOSTILE_NAME, company=HOSTILE_COMPANY, id="501"
    )
    workflow = new_workflow(
        first_name=HOSTILE_NAME, company=HOSTILE_COMPANY, message="<script>alert(1)</script>"
    )
    run_until_done(workflow.pk)
    assert Workflow.objects.get(pk=workflow.pk).status == Status.AWAITING_APPROVAL

    [task] = crm.requests("tasks.create")
    body = task.json["properties"]["hs_task_body"]
    assert body.startswith("<p>Review and approve in Leadline: <a href=")
    assert f'/dashboard/workflows/{workflow.pk}/">' in body
    assert "<script>" not in body
    assert_inert(body)  # the draft greets the lead by name: escaped
    # the only anchor is ours
    assert body.count("<a ") == 1


@pytest.mark.django_db
def test_the_note_body_escapes_the_draft_and_the_lead_values(crm):  # noqa: F811
    from outreach.services import crm_note_write, draft_create

    contact = crm.seed_contact(email="lead@acme.test", id="777")
    workflow = new_workflow(first_name=HOSTILE_NAME, company=HOSTILE_COMPANY)
    Workflow.objects.filter(pk=workflow.pk).update(
        status=Status.AWAITING_APPROVAL, contact_id=contact["id"]
    )
    draft_create(workflow_id=workflow.pk)
    EmailDraft.objects.filter(workflow=workflow).update(
        subject=f"Hi {HOSTILE_NAME}", body=f"Dear {HOSTILE_NAME},\n\nAbout {HOSTILE_COMPANY}."
    )

    assert crm_note_write(workflow_id=workflow.pk) == "note written"

    [note] = crm.requests("notes.create")
    body = note.json["properties"]["hs_note_body"]
    assert body.startswith("<p>Follow-up email for the rep to send by hand (")
    # What the rep should do, not the operator's "approve to complete …" (issue #15).
    assert "<p>What to do: send the email below to the lead from your own mailbox" in body
    assert "approve to complete" not in body and "MODE_DRAFT_ONLY" not in body
    assert "<p>To: lead@acme.test<br>Subject: Hi &lt;a href=" in body
    assert_inert(body)
    assert "&lt;img src=https://evil.example/beacon.png&gt; &amp; Co" in body
