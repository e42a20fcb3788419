"""audit.insert_with_audit: a row and its audit row in one statement, as the ORM writes them."""

from __future__ import annotations

import pytest
from django.db import IntegrityError
from django.db.models import Value
from django.db.models.functions import Upper
from django.forms.models import model_to_dict

from outreach.models import EmailDraft
from workflows.audit import event_for, insert_with_audit
from workflows.models import AuditEvent
from workflows.tests.test_transitions import make_workflow


def draft_for(workflow, key: str, **fields) -> EmailDraft:
    return EmailDraft(
        workflow=workflow,
        recipient="lea@acme.test",
        subject='Zoë\'s "quote" \u2013 100%',
        body="Hi Lea,\n\nThanks.",
        template="default",
        original_subject="s",
        original_body="b",
        idempotency_key=key,
        **fields,
    )


@pytest.mark.django_db
def test_the_inserted_row_and_its_audit_row_are_what_the_orm_writes():
    """The insert's text is built once per model, not compiled per call: its values are still
    prepared by their fields (defaults, auto_now_add, text with quotes), and the audit row
    names the new row."""
    ours = draft_for(make_workflow(key="ours"), "k-ours")
    theirs = draft_for(make_workflow(key="theirs"), "k-theirs")
    event = event_for(action="draft.created", object_type="email_draft", details={"a": 1})

    insert_with_audit(ours, event)
    theirs.save(force_insert=True)

    stored, saved = EmailDraft.objects.get(pk=ours.pk), EmailDraft.objects.get(pk=theirs.pk)
    different = {"id", "workflow", "idempotency_key", "created_at", "updated_at"}
    ours_dict, theirs_dict = model_to_dict(stored), model_to_dict(saved)
    for name in set(ours_dict) - different:
        assert ours_dict[name] == theirs_dict[name], name
    assert stored.subject == 'Zoë\'s "quote" \u2013 100%' and ours.pk and not ours._state.adding
    row = AuditEvent.objects.get(action="draft.created")
    assert row.object_id == str(ours.pk) == event.object_id and row.details == {"a": 1}


@pytest.mark.django_db
def test_a_conflict_writes_neither_row_and_an_expression_is_compiled_by_the_orm():
    workflow = make_workflow(key="conflict")
    insert_with_audit(draft_for(workflow, "k1"), event_for(action="one", object_type="d"))
    with pytest.raises(IntegrityError):
        insert_with_audit(draft_for(workflow, "k2"), event_for(action="two", object_type="d"))
    assert not AuditEvent.objects.filter(action="two").exists()

    other = draft_for(make_workflow(key="expr"), "k3")
    other.recipient = Upper(Value("lea@acme.test"))
    insert_with_audit(other, event_for(action="three", object_type="d"))
    assert EmailDraft.objects.get(pk=other.pk).recipient == "LEA@ACME.TEST"
