from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import F
from django.utils import timezone

from outreach.drafting import DraftContent, DraftContext, TemplateDrafter, get_drafter
from outreach.models import EmailDraft
from outreach.services import draft_create, draft_refresh
from outreach.tests.conftest import draft_of, make_workflow
from workflows.models import AuditEvent


@pytest.fixture
def form_templates(tmp_path, settings):
    """A per-form template set for form 'demo-form' (text only)."""
    directory = tmp_path / "outreach" / "emails" / "demo-form"
    directory.mkdir(parents=True)
    (directory / "subject.txt").write_text("Your demo, {{ first_name }}")
    (directory / "body.txt").write_text("Demo body for {{ company }}")
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]
    return directory


def test_the_forms_own_templates_are_chosen(form_templates):
    content = TemplateDrafter().draft(
        DraftContext(first_name="Ann", company="A&B", form_id="demo-form")
    )

    assert content.subject == "Your demo, Ann"
    assert content.body == "Demo body for A&B\n"
    assert content.body_html == ""
    assert content.template == "outreach/emails/demo-form"


def test_an_unknown_form_falls_back_to_the_default():
    content = TemplateDrafter().draft(DraftContext(first_name="Ann", form_id="no-such-form"))

    assert content.template == "outreach/emails/default"
    assert content.body.startswith("Hi Ann,")


def test_a_form_id_that_looks_like_a_path_falls_back_to_the_default(form_templates):
    content = TemplateDrafter().draft(DraftContext(form_id="../emails/demo-form"))

    assert content.template == "outreach/emails/default"


def test_html_is_escaped_but_text_stays_readable():
    ctx = DraftContext(company="<script>alert(1)</script> & O'Brien", message="Tags <b>?</b>")

    content = TemplateDrafter().draft(ctx)

    assert "<script>" not in content.body_html
    assert "&lt;script&gt;" in content.body_html
    assert "<script>alert(1)</script> & O'Brien" in content.body
    assert "Tags <b>?</b>" in content.body
    assert "&lt;" not in content.subject + content.body


def test_the_default_email_greets_references_and_signs():
    ctx = DraftContext(
        first_name="Ann",
        company="Acme",
        message="We want   a demo\nof routing.",
        owner_name="Rita Rep",
        owner_signature="Rita Rep\nAccount Executive",
    )

    content = TemplateDrafter().draft(ctx)

    assert content.subject == "Following up on your enquiry for Acme"
    assert content.body.startswith("Hi Ann,")
    assert '"We want a demo of routing."' in content.body
    assert content.body.rstrip().endswith("Rita Rep\nAccount Executive")


def test_without_a_name_the_greeting_is_neutral():
    content = TemplateDrafter().draft(DraftContext())

    assert content.body.startswith("Hello,")
    assert content.subject == "Thanks for getting in touch"


def test_an_unknown_drafter_setting_names_the_variable(settings):
    settings.OUTREACH_DRAFTER = "gpt"

    with pytest.raises(ImproperlyConfigured, match="OUTREACH_DRAFTER"):
        get_drafter()


@pytest.mark.django_db
def test_a_first_try_draft_that_exists_is_returned_and_audited_once():
    """``first_try`` skips the look for an existing draft; the one-statement insert's conflict
    still returns it, writes no second audit row, and leaves the caller's transaction usable
    (every test here runs inside one)."""
    workflow = make_workflow()
    first = draft_create(workflow_id=workflow.pk)
    again = draft_create(workflow_id=workflow.pk, first_try=True)

    assert again.pk == first.pk
    created = AuditEvent.objects.filter(action="draft.created", workflow=workflow)
    assert list(created.values_list("object_id", flat=True)) == [str(first.pk)]
    assert EmailDraft.objects.filter(workflow=workflow).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_first_try_draft_that_exists_is_returned_in_autocommit_too():
    """As a worker runs it: no transaction around the one-statement insert, so its conflict
    aborts only that statement, and the connection goes on."""
    workflow = make_workflow()
    first = draft_create(workflow_id=workflow.pk)
    assert not connection.in_atomic_block

    assert draft_create(workflow_id=workflow.pk, first_try=True).pk == first.pk
    assert AuditEvent.objects.filter(action="draft.created", workflow=workflow).count() == 1


@pytest.mark.django_db
def test_draft_create_uses_crm_facts_and_is_idempotent():
    workflow = make_workflow(
        contact={"firstname": "Crm", "company": "CRM Co", "owner": {"name": "Rita Rep"}},
        first_name="Form",
    )

    first = draft_create(workflow_id=workflow.pk)
    second = draft_create(workflow_id=workflow.pk)

    assert first.pk == second.pk
    draft = draft_of(workflow)
    assert draft.recipient == "sales@company.com"
    assert draft.body.startswith("Hi Crm,")
    assert "CRM Co" in draft.subject
    assert draft.template == "outreach/emails/default"
    assert (draft.original_subject, draft.original_body) == (draft.subject, draft.body)
    assert draft.idempotency_key.startswith(f"wf{workflow.pk}-")


class _Scripted:
    """A drafter that answers with the given content and notes how it was called."""

    name = "llm"

    def __init__(self, content: DraftContent, during=None) -> None:
        self.content, self.during, self.depths = content, during, []

    def draft(self, ctx: DraftContext) -> DraftContent:
        self.depths.append(len(connection.atomic_blocks))
        if self.during:
            self.during()
        return self.content


def _content(body: str, **kwargs) -> DraftContent:
    return DraftContent(subject="Hello", body=body, body_html="", template="t", **kwargs)


@pytest.mark.django_db
def test_draft_refresh_records_who_wrote_the_text_and_this_model_call():
    workflow = make_workflow()
    kept = {"ai_outcome": "kept", "ai_model": "m", "ai_prompt_tokens": 10, "language": "en"}
    draft_create(workflow_id=workflow.pk, drafter=_Scripted(_content("one", ai=kept)))
    # The model timed out: the template's text, and a record without token counts.
    fell_back = {"ai_outcome": "timeout", "ai_model": "m", "ai_detail": "read timeout"}
    drafter = _Scripted(_content("two", drafter="template", ai=fell_back))

    assert draft_refresh(workflow_id=workflow.pk, drafter=drafter)

    draft = draft_of(workflow)
    assert (draft.body, draft.original_body, draft.version) == ("two", "two", 2)
    assert draft.drafter == "template"  # not the drafter's name: the model's text was not used
    assert (draft.ai_outcome, draft.ai_detail) == ("timeout", "read timeout")
    assert draft.ai_prompt_tokens is None and draft.language == ""  # not the earlier call's
    # The drafter (a model call) ran outside any transaction of draft_refresh's.
    assert drafter.depths == [len(connection.atomic_blocks)]


@pytest.mark.django_db
def test_draft_refresh_leaves_a_draft_edited_while_it_drafted():
    workflow = make_workflow()
    draft_create(workflow_id=workflow.pk)

    def operator_edits() -> None:
        EmailDraft.objects.filter(workflow=workflow).update(
            body="the operator's", edited_at=timezone.now(), version=F("version") + 1
        )

    drafter = _Scripted(_content("refreshed"), during=operator_edits)
    assert not draft_refresh(workflow_id=workflow.pk, drafter=drafter)
    draft = draft_of(workflow)
    assert (draft.body, draft.version) == ("the operator's", 2)
    assert not AuditEvent.objects.filter(action="draft.refreshed").exists()
