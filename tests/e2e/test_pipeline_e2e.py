"""HubSpot webhook → 202 → real Celery worker → sandbox over HTTP → awaiting_approval."""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from tests.harness import GunicornServer, form_body, signed_post, wait_for
from workflows.models import Status, Step, Workflow, WorkflowError
from workflows.sweeper import sweep

from .proxy import CuttableProxy

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def post_form(server, email: str, message: str | None = None) -> requests.Response:
    """One signed delivery of a lead from Erin at E2E Corp to ``server`` (anything with .url)."""
    fields = {"email": email, "firstname": "Erin", "company": "E2E Corp"}
    return signed_post(
        server.url, form_body({**fields, "message": message or f"hello {uuid.uuid4()}"})
    )


def run(server, email: str, message: str | None = None, *, timeout: float = 45) -> Workflow:
    """Post a lead (``post_form``) and wait for its workflow to settle (``settled``)."""
    response = post_form(server, email, message)
    assert response.status_code == 202, response.text
    workflow_id = Workflow.objects.get(submission_id=response.json()["submission_ids"][0]).pk
    return wait_for(lambda: settled(workflow_id), timeout=timeout)


def settled(workflow_id: int, statuses=(Status.AWAITING_APPROVAL, Status.FAILED)):
    """Settled, and a new contact's contact attached (issue #16: its draft comes first)."""
    return (
        Workflow.objects.filter(pk=workflow_id, status__in=statuses)
        .exclude(step_log__contains={Step.RESOLVE_CONTACT: {"contact_pending": True}})
        .first()
    )


def test_signed_webhook_reaches_awaiting_approval_through_a_real_worker(e2e, live_server):
    e2e.configure(owner_rules=[{"email_domain": "e2e.test", "owner_id": "1001"}])
    response = post_form(live_server, "erin@e2e.test")
    assert response.status_code == 202, response.text
    [submission_id] = response.json()["submission_ids"]
    workflow = Workflow.objects.get(submission_id=submission_id)
    workflow = wait_for(lambda: settled(workflow.pk))
    assert workflow.status == Status.AWAITING_APPROVAL
    assert workflow.contact_id and workflow.owner_id == "1001" and workflow.task_id
    assert workflow.draft.recipient == "erin@e2e.test"
    [task] = e2e.requests("tasks.create")
    assert task.json["associations"][0]["types"][0]["associationTypeId"] == 204
    assert task.json["properties"]["hubspot_owner_id"] == "1001"


def test_two_500s_then_success_are_retried_by_the_worker_with_backoff(e2e, live_server):
    e2e.add_fault("contacts.search", {"kind": "status", "status": 500, "times": 2})
    response = post_form(live_server, "retry@e2e.test")
    workflow_id = Workflow.objects.get(submission_id=response.json()["submission_ids"][0]).pk
    workflow = wait_for(lambda: settled(workflow_id), timeout=40)
    assert workflow.status == Status.AWAITING_APPROVAL
    errors = list(WorkflowError.objects.filter(workflow_id=workflow_id).order_by("attempt"))
    assert [e.attempt for e in errors] == [1, 2]
    assert workflow.step_log["resolve_contact"]["attempts"] == 3
    searches = [r.time for r in e2e.requests("contacts.search")]
    # the worker waited out the backoff (≥ 1 s, then ≥ 2 s) between attempts
    assert searches[1] - searches[0] >= 0.9 and searches[2] - searches[1] >= 1.9


def test_a_400_fails_after_one_attempt(e2e, live_server):
    e2e.add_fault("contacts.search", {"kind": "status", "status": 400, "times": 1})
    response = post_form(live_server, "bad@e2e.test")
    workflow_id = Workflow.objects.get(submission_id=response.json()["submission_ids"][0]).pk
    workflow = wait_for(lambda: settled(workflow_id))
    assert workflow.status == Status.FAILED
    assert WorkflowError.objects.filter(workflow_id=workflow_id).count() == 1


def test_worker_killed_mid_step_the_workflow_finishes_with_exactly_one_crm_task(
    e2e, live_server, celery_worker
):
    # A known contact: the task is created inside the workflow's own step (a new contact's
    # is created by the background attach, issue #16).
    e2e.seed_contact(email="crash@e2e.test", firstname="Crash")
    e2e.add_fault("tasks.create", {"kind": "latency", "ms": 2500, "times": 1})
    response = post_form(live_server, "crash@e2e.test")
    workflow_id = Workflow.objects.get(submission_id=response.json()["submission_ids"][0]).pk
    wait_for(lambda: e2e.requests("tasks.create"), timeout=30, every=0.05)
    celery_worker.kill()  # mid-call: the sandbox still creates the task after its latency
    try:
        assert Workflow.objects.get(pk=workflow_id).status == Status.RUNNING
        celery_worker.start()
        # the lease (6 s here) runs out; the sweeper hands the workflow to the new worker
        wait_for(lambda: sweep().expired_leases, timeout=20, every=0.5)
        workflow = wait_for(lambda: settled(workflow_id), timeout=30)
    finally:
        if celery_worker.proc.poll() is not None:
            celery_worker.start()
    assert workflow.status == Status.AWAITING_APPROVAL
    assert len(e2e.state.tasks) == 1
    assert workflow.task_id in e2e.state.tasks


def test_with_no_relay_running_the_sweeper_gets_it_processed(
    e2e, worker_env, settings, outbox_relay
):
    """The webhook publishes nothing (issue #16); with the relay down and the web's own path to
    Redis cut, the lead is stored, answered 202 at once, and the sweeper is the safety net."""
    broker = urlsplit(worker_env["CELERY_BROKER_URL"])
    proxy = CuttableProxy(broker.port or 6379).start()
    web_env = {
        **worker_env,
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{proxy.port}{broker.path}",
        "HUBSPOT_CLIENT_SECRET": settings.HUBSPOT_CLIENT_SECRET,
    }
    outbox_relay.stop()
    try:
        with GunicornServer(web_env) as web:
            proxy.cut()
            started = time.monotonic()
            response = post_form(web, "outage@e2e.test")
            elapsed = time.monotonic() - started
            proxy.restore()
        assert response.status_code == 202, response.text
        assert elapsed < 5, f"a broker outage must not hold the webhook ({elapsed:.1f}s)"
        workflow = Workflow.objects.get(submission_id=response.json()["submission_ids"][0])
        time.sleep(1.5)
        workflow.refresh_from_db()
        assert (workflow.status, workflow.enqueued_at) == (Status.PENDING, None)  # unpublished
        settings.SWEEPER_PENDING_AFTER_SECONDS = 1
        assert sweep().pending == 1
        assert wait_for(lambda: settled(workflow.pk)).status == Status.AWAITING_APPROVAL
    finally:
        outbox_relay.start()
