"""SIGKILL the Celery worker again and again mid-run: nothing lost, nothing done twice."""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest
from django.utils import timezone

from intake.payloads import parse_body
from intake.services import submissions_ingest
from outreach.models import EmailDraft
from workflows.hubspot.client import task_marker_token
from workflows.models import Status, Step, Workflow
from workflows.sweeper import sweep

from .conftest import size

pytestmark = [pytest.mark.e2e, pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

SETTLED = (Status.AWAITING_APPROVAL, Status.FAILED)
#: Off only to show that this test can fail (docs/reliability.md); never off in CI.
SWEEPER_ON = os.environ.get("LEADLINE_RELIABILITY_NO_SWEEPER") != "1"


def ingest(n: int) -> list[int]:
    ids: list[int] = []
    for i in range(n):
        body = json.dumps(
            {"portalId": 62515, "formId": "kill", "fields": [
                {"name": "email", "value": f"kill{i}-{time.time_ns()}@example.com"}]}
        ).encode()  # fmt: skip
        result = submissions_ingest(
            items=parse_body(body, query={}), signature_version="v3", received_at=timezone.now()
        )
        ids += result.workflow_ids
    return ids


def test_repeated_worker_kills_lose_nothing_and_duplicate_nothing(e2e, celery_worker, settings):
    settings.SWEEPER_PENDING_AFTER_SECONDS = 2
    submissions, kills = size(500, 20), size(20, 2)
    e2e.configure(latency_ms=50)
    ids = ingest(submissions)
    deadline = time.monotonic() + size(600, 90)
    killed = sweeps = 0
    try:
        while time.monotonic() < deadline:
            if killed < kills:
                time.sleep(1.5)
                celery_worker.kill()
                killed += 1
                celery_worker.start()
            if SWEEPER_ON:
                swept = sweep()
                sweeps += swept.published
            settled = (
                Workflow.objects.filter(pk__in=ids, status__in=SETTLED)
                .exclude(step_log__contains={Step.RESOLVE_CONTACT: {"contact_pending": True}})
                .count()
            )  # a new contact's contact attached too (issue #16)
            if killed >= kills and settled == len(ids):
                break
            time.sleep(0.5)
    finally:
        e2e.configure(latency_ms=0)
    statuses = Counter(Workflow.objects.filter(pk__in=ids).values_list("status", flat=True))
    markers = Counter()
    for stored in e2e.state.tasks.values():
        body = stored.object["properties"].get("hs_task_body", "")
        for wf in ids:
            if task_marker_token(f"workflow-{wf}") in body:
                markers[wf] += 1
    drafts = Counter(
        EmailDraft.objects.filter(workflow_id__in=ids).values_list("workflow_id", flat=True)
    )
    print(f"\nworker kills: {killed} SIGKILLs, {submissions} submissions, sweeper re-published "
          f"{sweeps}; statuses {dict(statuses)}; CRM tasks {sum(markers.values())} for "
          f"{len(markers)} workflows; drafts {sum(drafts.values())}")  # fmt: skip
    assert killed == kills
    assert statuses.get(Status.AWAITING_APPROVAL, 0) + statuses.get(Status.FAILED, 0) == len(ids), (
        statuses
    )
    assert all(count == 1 for count in markers.values()), markers.most_common(3)
    assert len(markers) == statuses.get(Status.AWAITING_APPROVAL, 0)
    assert all(count == 1 for count in drafts.values())
