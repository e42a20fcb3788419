"""HubSpot misbehaving: 30 % faults, and a burst against its rate limit."""

from __future__ import annotations

from collections import Counter

import pytest

from intake.models import FormSubmission
from tests.harness import GunicornServer, wait_for
from workflows.models import Status, Workflow, WorkflowError

from ._support import post_lead, settled_count
from .conftest import size

pytestmark = [pytest.mark.e2e, pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

SECRET = "faults-client-secret"


def ingest(worker_env, count: int) -> list[int]:
    with GunicornServer({**worker_env, "HUBSPOT_CLIENT_SECRET": SECRET}) as web:
        responses = [post_lead(web.url, SECRET) for _ in range(count)]
    assert {r.status_code for r in responses} == {202}
    return [i for r in responses for i in r.json()["submission_ids"]]


def test_thirty_percent_faulty_hubspot_calls_end_settled_with_every_error_recorded(e2e, worker_env):
    e2e.set_faults(
        {
            "*": {
                "kind": "rate",
                "probability": 0.3,
                "times": None,
                "choices": [
                    {"kind": "status", "status": 429, "retry_after": 1},
                    {"kind": "status", "status": 500},
                    {"kind": "timeout", "seconds": 1.5},
                ],
            }
        }
    )
    ids = ingest(worker_env, size(300, 12))
    wait_for(lambda: settled_count(ids) == len(ids), timeout=size(900, 150), every=1)
    e2e.set_faults({})
    workflows = Workflow.objects.filter(submission_id__in=ids)
    faulted = [r for r in e2e.requests() if r.fault]
    errors = WorkflowError.objects.filter(workflow__in=workflows)
    statuses = Counter(workflows.values_list("status", flat=True))
    kinds = dict(Counter(r.fault for r in faulted))
    print(f"\n30% faults: {len(ids)} workflows {dict(statuses)}; {len(faulted)} faulted calls "
          f"{kinds}; {errors.count()} errors recorded")  # fmt: skip
    assert faulted, "the fault rule never fired"
    # Every faulted call surfaced as exactly one recorded, retryable error.
    assert errors.count() == len(faulted)
    assert not errors.filter(retryable=False).exists()
    for workflow in workflows.filter(status=Status.FAILED):
        assert "retries exhausted" in workflow.last_error


def test_a_burst_within_hubspots_rate_limit_gets_no_429(e2e, worker_env):
    # HubSpot Pro: 190 calls per rolling 10 s. The workers' shared throttle is set to 180.
    e2e.configure(rate_limit=190, rate_limit_interval_ms=10_000)
    ids = ingest(worker_env, size(500, 30))
    wait_for(lambda: settled_count(ids) == len(ids), timeout=size(900, 120), every=1)
    calls = e2e.requests()
    print(f"\nburst: {len(ids)} submissions, {len(calls)} HubSpot calls, "
          f"{sum(r.status == 429 for r in calls)} answered 429")  # fmt: skip
    assert not [r for r in calls if r.status == 429]
    assert not Workflow.objects.filter(submission_id__in=ids, status=Status.FAILED).exists()
    assert FormSubmission.objects.filter(pk__in=ids).count() == len(ids)
