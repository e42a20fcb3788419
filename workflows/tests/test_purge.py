"""Retention: `manage.py purge` deletes old submissions in batches, keeping audit rows or not."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from intake.models import FormSubmission
from outreach.models import EmailDraft
from workflows import audit
from workflows.management.commands.purge import parse_duration
from workflows.models import AuditEvent, Status, Workflow, WorkflowError

pytestmark = pytest.mark.django_db


def make_lead(days_ago: int) -> Workflow:
    submission = FormSubmission.objects.create(
        dedupe_key=uuid.uuid4().hex,
        shape="forms",
        signature_version="v3",
        raw_payload={},
        email="lead@example.com",
        received_at=timezone.now() - timedelta(days=days_ago),
    )
    workflow = Workflow.objects.create(submission=submission, status=Status.FAILED)
    WorkflowError.objects.create(
        workflow=workflow,
        step="resolve_contact",
        attempt=1,
        exception_type="HubSpotError",
        message="404",
        retryable=False,
    )
    EmailDraft.objects.create(
        workflow=workflow,
        subject="Hi",
        body="Hello",
        template="t",
        original_subject="Hi",
        original_body="Hello",
        idempotency_key=uuid.uuid4().hex,
    )
    audit.record(
        action="workflow.transition",
        object_type="workflow",
        object_id=workflow.pk,
        workflow_id=workflow.pk,
    )
    return workflow


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90d", timedelta(days=90)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30))],
)
def test_durations_parse(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["90", "0d", "1w", "-3d", ""])
def test_bad_durations_are_refused(text):
    with pytest.raises(CommandError, match="90d"):
        parse_duration(text)


def test_purge_keeps_audit_rows_detached_by_default():
    old = [make_lead(days_ago=100) for _ in range(3)]
    recent = make_lead(days_ago=10)

    output = purge("--older-than", "90d", "--batch-size", "2")

    assert "submissions: 3" in output and "workflows: 3" in output
    assert "audit_events (kept, detached): 3" in output
    assert list(Workflow.objects.values_list("pk", flat=True)) == [recent.pk]
    assert WorkflowError.objects.count() == EmailDraft.objects.count() == 1
    kept = AuditEvent.objects.filter(object_id__in=[str(w.pk) for w in old])
    assert kept.count() == 3
    assert all(event.workflow_id is None for event in kept)


def test_purge_audit_deletes_the_purged_workflows_audit_rows():
    old = make_lead(days_ago=100)
    recent = make_lead(days_ago=10)

    output = purge("--older-than", "90d", "--purge-audit")

    assert "audit_events (deleted): 1" in output
    assert not AuditEvent.objects.filter(object_id=str(old.pk)).exists()
    assert AuditEvent.objects.filter(workflow=recent).count() == 1


def test_dry_run_counts_and_deletes_nothing():
    make_lead(days_ago=100)
    make_lead(days_ago=100)

    output = purge("--older-than", "90d", "--dry-run")

    assert "Dry run" in output and "submissions: 2" in output and "email_drafts: 2" in output
    # The cutoff as replay --dry-run and the dashboard print times: the zone named.
    assert re.search(r"received before \d{4}-\d\d-\d\d \d\d:\d\d UTC:", output), output
    assert FormSubmission.objects.count() == 2
    assert AuditEvent.objects.count() == 2


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_purged_delivery_replayed_is_still_a_duplicate(client, settings, version):
    # A v1/v2 signature has no time: a captured request stays valid for ever, and once purge
    # deleted its submission the same bytes were a new delivery, then a new lead and perhaps
    # a second email (found by stop 23's security review).
    from intake.models import PurgedDeliveryKey
    from intake.signatures import signed_headers

    settings.HUBSPOT_CLIENT_SECRET = "purge-test-secret"
    settings.PUBLIC_BASE_URL = ""
    body = (
        b'{"portalId": 62515, "formId": "f", "submittedAt": 1764201600000,'
        b' "fields": [{"name": "email", "value": "ada@example.com"}]}'
    )
    uri = "http://testserver/api/webhooks/hubspot/forms"
    headers = signed_headers(
        secret="purge-test-secret", version=version, method="POST", uri=uri, body=body
    )

    def deliver():
        return client.post(
            "/api/webhooks/hubspot/forms", data=body, content_type="application/json",
            headers=headers,
        )  # fmt: skip

    assert deliver().json()["accepted"] == 1
    FormSubmission.objects.update(received_at=timezone.now() - timedelta(days=91))
    purge("--older-than", "90d")
    assert not FormSubmission.objects.exists() and PurgedDeliveryKey.objects.count() == 1

    replayed = deliver()

    assert replayed.status_code == 202
    assert (replayed.json()["accepted"], replayed.json()["duplicates"]) == (0, 1)
    assert not FormSubmission.objects.exists() and not Workflow.objects.exists()


def test_purge_deletes_non_lead_deliveries_past_the_cutoff():
    # They keep raw payloads (a refused body may name a person) and were never purged.
    from intake.models import NonLeadDelivery

    def kept(days_ago: int, key: str) -> None:
        NonLeadDelivery.objects.create(
            dedupe_key=key, outcome="refused", signature_version="v3",
            raw_payload={"body_text": "ada@example.com"},
            received_at=timezone.now() - timedelta(days=days_ago),
        )  # fmt: skip

    kept(120, "old-1")
    kept(95, "old-2")
    kept(10, "recent")

    assert "non_lead_deliveries: 2" in purge("--older-than", "90d", "--dry-run")
    assert NonLeadDelivery.objects.count() == 3
    assert "non_lead_deliveries: 2" in purge("--older-than", "90d", "--batch-size", "1")
    assert list(NonLeadDelivery.objects.values_list("dedupe_key", flat=True)) == ["recent"]
