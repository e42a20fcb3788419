from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from outreach.drafting import DraftContext, TemplateDrafter, get_drafter
from outreach.services import draft_create
from outreach.tests.conftest import draft_of, make_workflow


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
