"""HubSpot's documented error classes, from the sandbox through a real worker: each leads to
the documented wait and the workflow completes afterwards. And the unowned lead."""

from __future__ import annotations

from itertools import pairwise

import pytest

from tests.e2e.test_pipeline_e2e import run
from workflows.models import Status, WorkflowError

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def gaps(requests) -> list[float]:
    times = [r.time for r in requests]
    return [b - a for a, b in pairwise(times)]


def test_a_423_locked_is_retried_after_about_two_seconds(e2e, live_server):
    e2e.add_fault("contacts.search", {"kind": "status", "status": 423, "times": 1})

    workflow = run(live_server, "locked@e2e.test")

    assert workflow.status == Status.AWAITING_APPROVAL
    error = WorkflowError.objects.get(workflow=workflow)
    assert "423" in error.message and error.retry_in_seconds >= 2.0
    assert gaps(e2e.requests("contacts.search"))[0] >= 1.9


def test_a_477_migration_in_progress_honours_retry_after(e2e, live_server):
    e2e.add_fault(
        "contacts.search", {"kind": "status", "status": 477, "retry_after": 3, "times": 1}
    )

    workflow = run(live_server, "migrating@e2e.test")

    assert workflow.status == Status.AWAITING_APPROVAL
    error = WorkflowError.objects.get(workflow=workflow)
    assert "477" in error.message and error.retry_in_seconds >= 3.0
    assert gaps(e2e.requests("contacts.search"))[0] >= 2.9


def test_a_daily_429_halts_every_call_until_the_window_resets_without_burning_attempts(
    e2e, live_server
):
    e2e.configure(owner_rules=[{"email_domain": "e2e.test", "owner_id": "1001"}])
    e2e.add_fault("tasks.create", {"kind": "status", "status": 429, "policy": "DAILY", "times": 1})
    # A known contact: the task is created by the workflow's own step (issue #16).
    e2e.seed_contact(email="daily@e2e.test", firstname="Dana")

    workflow = run(live_server, "daily@e2e.test")

    assert workflow.status == Status.AWAITING_APPROVAL
    assert workflow.task_id
    # Not an attempt and not an error: the step ran once, after the halt.
    assert workflow.step_log["create_crm_task"]["attempts"] == 1
    assert workflow.step_log["create_crm_task"]["paused"] == 1
    assert not WorkflowError.objects.filter(workflow=workflow).exists()
    refused, created = e2e.requests("tasks.create")
    assert refused.status == 429 and created.status == 201
    # HUBSPOT_DAILY_PAUSE_SECONDS is 3 in the worker: no HubSpot call went out meanwhile.
    assert created.time - refused.time >= 2.9
    assert not [r for r in e2e.requests() if refused.time < r.time < created.time]


def test_an_unowned_lead_gets_no_owner_no_signature_and_an_unassigned_task(e2e, live_server):
    workflow = run(live_server, "nobody-owns-me@e2e.test")

    assert workflow.status == Status.AWAITING_APPROVAL
    assert workflow.contact_id and workflow.owner_id == ""
    assert "owner" not in workflow.contact
    assert not e2e.requests("owners.get")
    [task] = e2e.requests("tasks.create")
    assert "hubspot_owner_id" not in task.json["properties"]
    assert "Avery" not in workflow.draft.body
