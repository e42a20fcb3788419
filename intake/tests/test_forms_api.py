"""The Forms poll's entry into intake: parse_forms_api_submission + submissions_ingest."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from intake.models import FormSubmission, SignatureVersion
from intake.payloads import PayloadError, parse_forms_api_submission
from intake.services import submissions_ingest
from workflows.models import Trigger, Workflow

FORM = "4f2b7c1e-9a3d-4b8e-8f6a-2c1d0e9b7a55"


def forms_api_item(**overrides: object) -> dict:
    return {
        "conversionId": "5f6a7b8c-0000-4000-8000-000000000001",
        "submittedAt": 1764235200000,
        "values": [
            {"name": "email", "value": "Grace@Navy.example.mil"},
            {"name": "firstname", "value": "Grace"},
            {"name": "company", "value": "Compiler Works"},
            {"name": "message", "value": "Pricing for 3 sites?"},
        ],
        "pageUrl": "https://www.example.com/pricing",
    } | overrides


def test_a_forms_api_item_is_normalised_like_a_forms_post():
    item = parse_forms_api_submission(forms_api_item(), portal_id=62515, form_id=FORM)
    assert item.shape == "forms"
    assert item.email == "grace@navy.example.mil"
    assert (item.first_name, item.company) == ("Grace", "Compiler Works")
    assert item.message == "Pricing for 3 sites?"
    assert (item.portal_id, item.form_id) == (62515, FORM)
    assert item.page_uri == "https://www.example.com/pricing"
    assert item.submitted_at == datetime(2025, 11, 27, 9, 20, tzinfo=UTC)
    assert item.conversion_id == "5f6a7b8c-0000-4000-8000-000000000001"


def test_the_same_conversion_has_the_same_dedupe_key_whatever_else_changed():
    first = parse_forms_api_submission(forms_api_item(), portal_id=62515, form_id=FORM)
    again = parse_forms_api_submission(
        forms_api_item(pageUrl="https://elsewhere.example/"), portal_id=62515, form_id=FORM
    )
    other = parse_forms_api_submission(
        forms_api_item(conversionId="another"), portal_id=62515, form_id=FORM
    )
    assert first.dedupe_key == again.dedupe_key != other.dedupe_key


@pytest.mark.parametrize("bad", [[], {"values": "x"}, {"values": [1]}])
def test_a_malformed_forms_api_item_is_refused(bad):
    with pytest.raises(PayloadError):
        parse_forms_api_submission(bad, portal_id=1, form_id=FORM)


@pytest.mark.django_db
def test_a_polled_item_is_stored_unsigned_with_a_reconcile_workflow():
    item = parse_forms_api_submission(forms_api_item(), portal_id=62515, form_id=FORM)
    result = submissions_ingest(
        items=[item],
        signature_version=SignatureVersion.POLL,
        received_at=timezone.now(),
        trigger=Trigger.RECONCILE,
    )
    again = submissions_ingest(
        items=[item],
        signature_version=SignatureVersion.POLL,
        received_at=timezone.now(),
        trigger=Trigger.RECONCILE,
    )
    submission = FormSubmission.objects.get(pk=result.accepted_ids[0])
    assert submission.signature_version == "poll"
    assert Workflow.objects.get(pk=result.workflow_ids[0]).trigger == "reconcile"
    assert (again.accepted_ids, again.duplicates) == ([], 1)
