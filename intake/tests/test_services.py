"""submissions_ingest: the one-statement PostgreSQL path stores what the portable path does."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from intake import services
from intake.models import FormSubmission, LeadKey
from intake.payloads import parse_body, parse_forms_api_submission
from workflows.models import AuditEvent, Workflow

pytestmark = pytest.mark.django_db

# object_id differs on purpose: one contact id twice would be one lead (intake/identity.py).
IGNORED = {
    "id", "dedupe_key", "raw_payload", "submission", "workflow", "lead", "object_id", "workflow_at"
}  # fmt: skip


def items(first_event_id: int, count: int = 3) -> list:
    events = [
        {
            "eventId": first_event_id + i,
            "subscriptionId": 1,
            "portalId": 62515,
            "appId": 2,
            "occurredAt": 1764201600000 + i,
            "subscriptionType": "contact.creation",
            "attemptNumber": 0,
            "objectId": first_event_id + i,
            "changeSource": "FORM",
        }
        for i in range(count)
    ]
    return parse_body(json.dumps(events).encode(), query={})


def overlong_form(n: int) -> list:
    """A form submission whose email does not fit the column (stored empty, with the reason)."""
    body = {
        "portalId": 62515,
        "formId": "f",
        "submittedAt": 1764201600000,
        "fields": [{"name": "email", "value": "x" * 300 + "@example.com"}],
        "n": n,  # a different body, so a different dedupe key; raw_payload is not compared
    }
    return parse_body(json.dumps(body).encode(), query={})


def stored(result: services.IngestResult) -> list[tuple[dict, dict, dict]]:
    """Each new submission with its workflow and audit row, minus ids and keys."""
    rows = []
    for submission_id, workflow_id in zip(result.accepted_ids, result.workflow_ids, strict=True):
        submission = model_to_dict(FormSubmission.objects.get(pk=submission_id))
        workflow = Workflow.objects.get(pk=workflow_id)
        assert workflow.submission_id == submission_id
        # The dashboard's date filter relies on it (issue #16): never before the workflow.
        assert submission["workflow_at"] >= workflow.created_at
        audit = AuditEvent.objects.get(workflow_id=workflow_id)
        assert audit.object_id == str(submission_id)
        audit_fields = model_to_dict(audit, exclude=["object_id"])
        rows.append(
            tuple(
                {k: v for k, v in d.items() if k not in IGNORED}
                for d in (submission, model_to_dict(workflow), audit_fields)
            )
        )
    return rows


def test_both_paths_store_the_same_rows(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement path is PostgreSQL's")
    received = timezone.now() - dt.timedelta(seconds=5)
    fast = services.submissions_ingest(
        items=items(100) + overlong_form(1), signature_version="v3", received_at=received
    )
    monkeypatch.setattr(services, "_store_in_one_statement", services._store_with_the_orm)
    portable = services.submissions_ingest(
        items=items(200) + overlong_form(2), signature_version="v3", received_at=received
    )
    assert len(fast.accepted_ids) == len(portable.accepted_ids) == 4
    overlong = AuditEvent.objects.get(workflow_id=fast.workflow_ids[-1])
    assert overlong.reason.startswith("email longer than 254 characters")
    assert stored(fast) == stored(portable)
    created = Workflow.objects.filter(pk__in=fast.workflow_ids).values_list("created_at", flat=True)
    assert all(abs(c - timezone.now()) < dt.timedelta(seconds=5) for c in created)


def test_one_statement_counts_duplicates_within_and_across_deliveries():
    first = services.submissions_ingest(
        items=items(300) + items(300, count=1), signature_version="v1", received_at=timezone.now()
    )
    assert (len(first.accepted_ids), first.duplicates) == (3, 1)
    again = services.submissions_ingest(
        items=items(300, count=5), signature_version="v1", received_at=timezone.now()
    )
    assert (len(again.accepted_ids), again.duplicates) == (2, 3)
    assert FormSubmission.objects.count() == Workflow.objects.count() == 5
    assert AuditEvent.objects.filter(action="submission.received").count() == 5


def test_a_batch_too_big_for_one_statement_is_split_and_still_all_stored(monkeypatch):
    # The portable path splits by bulk_batch_size; PostgreSQL's one statement takes any batch.
    monkeypatch.setattr(services, "_store_in_one_statement", services._store_with_the_orm)
    monkeypatch.setattr(connection.ops, "bulk_batch_size", lambda fields, objs: 2)
    with CaptureQueriesContext(connection) as queries:
        result = services.submissions_ingest(
            items=items(400, count=5), signature_version="v3", received_at=timezone.now()
        )
    insert = f"INSERT INTO {connection.ops.quote_name(FormSubmission._meta.db_table)} "
    assert sum(q["sql"].startswith(insert) for q in queries.captured_queries) == 3  # 2 + 2 + 1
    assert len(result.accepted_ids) == 5 and len(set(result.workflow_ids)) == 5
    assert Workflow.objects.filter(submission_id__in=result.accepted_ids).count() == 5


def polled(n: int, contact_id: str) -> list:
    """A Forms API submission whose contact the poll found by email (it claims contact:<id>)."""
    submission = {
        "conversionId": f"conv-{n}",
        "submittedAt": 1764201600000 + n,
        "values": [{"name": "email", "value": f"lead{n}@example.com"}],
    }
    return [
        parse_forms_api_submission(submission, portal_id=62515, form_id="f", contact_id=contact_id)
    ]


def test_both_paths_claim_a_polled_submissions_contact_key_alike(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement path is PostgreSQL's")

    def claims(first_id: int) -> tuple:
        contact = str(first_id)
        event = services.submissions_ingest(
            items=items(first_id, count=1), signature_version="v3", received_at=timezone.now()
        )
        poll = services.submissions_ingest(
            items=polled(first_id, contact), signature_version="poll", received_at=timezone.now()
        )
        alone = services.submissions_ingest(  # another contact's poll item starts its lead
            items=polled(first_id + 1, contact + "1"),
            signature_version="poll",
            received_at=timezone.now(),
        )
        [lead] = event.accepted_ids
        keys = sorted(
            k.split(":")[0]
            for k in LeadKey.objects.filter(lead_id=lead).values_list("key", flat=True)
        )
        [own] = alone.accepted_ids
        return (
            poll.workflow_ids,
            list(poll.joined.values()) == [lead],
            keys,
            len(alone.workflow_ids),
            LeadKey.objects.filter(key=f"contact:{contact}1", lead_id=own).exists(),
        )

    fast = claims(500)
    monkeypatch.setattr(services, "_store_in_one_statement", services._store_with_the_orm)
    portable = claims(600)
    assert fast == portable == ([], True, ["contact", "conversion", "form", "form"], 1, True)


def test_the_statement_text_stays_within_psycopgs_query_cache():
    """psycopg re-parses the placeholders of a longer query on every execute (~0.1 ms of CPU
    a form post): the statement must stay under its limits, whatever is added to it."""
    from psycopg import _queries

    sql, params = services._one_statement(
        items(6000, count=2), "v3", timezone.now(), timezone.now(), "webhook"
    )
    assert len(sql.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH
    assert len(params) <= _queries.MAX_CACHED_STATEMENT_PARAMS


@pytest.mark.parametrize("path", ["one statement", "portable"])
def test_a_purged_key_is_a_duplicate_on_both_paths(monkeypatch, path):
    from intake.models import PurgedDeliveryKey

    if path == "portable":
        monkeypatch.setattr(services, "_store_in_one_statement", services._store_with_the_orm)
    elif connection.vendor != "postgresql":
        pytest.skip("the one-statement path is PostgreSQL's")
    purged, fresh = items(700, count=2)
    PurgedDeliveryKey.objects.create(dedupe_key=purged.dedupe_key, purged_at=timezone.now())

    result = services.submissions_ingest(
        items=[purged, fresh], signature_version="v1", received_at=timezone.now()
    )

    assert (len(result.accepted_ids), result.duplicates) == (1, 1)
    assert FormSubmission.objects.get().dedupe_key == fresh.dedupe_key
