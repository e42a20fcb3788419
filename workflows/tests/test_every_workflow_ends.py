"""Every workflow ends: an unexpected exception in a step, a lead whose input overflows a column,
or workers that die in every attempt all leave the workflow failed (with an error row) or
waiting for a human, never ``running``."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from intake.models import FormSubmission
from workflows import alerts, pipeline
from workflows.models import Status, Step, Workflow, WorkflowError
from workflows.sweeper import EXCEEDED, sweep
from workflows.transitions import last_transition_to

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_crm(settings):
    settings.HUBSPOT_ACCESS_TOKEN = ""
    settings.CELERY_BROKER_URL = "memory://"
    settings.WORKFLOW_MAX_ATTEMPTS = 3


def new_workflow(*, company: str = "Acme", email: str = "lead@acme.test", key: str = "1"):
    submission = FormSubmission.objects.create(
        dedupe_key=f"ends:{key}",
        shape="forms",
        signature_version="v3",
        raw_payload={},
        email=email,
        first_name="Lea",
        company=company,
        form_id="contact-us",
        received_at=timezone.now(),
    )
    return Workflow.objects.create(submission=submission)


def run_until_settled(workflow_id: int, runs: int = 10) -> list[float]:
    countdowns = []
    for _ in range(runs):
        try:
            pipeline.run_workflow(workflow_id, task_id="task-1")
            return countdowns
        except pipeline.RetryLater as retry:
            countdowns.append(retry.countdown)
        except pipeline.StepFailed:
            return countdowns
    raise AssertionError("the workflow never settled")


def test_an_unexpected_exception_is_retried_with_backoff_then_fails_with_error_rows(
    monkeypatch, settings, mailoutbox
):
    def broken(workflow, client):
        raise KeyError("surprise")

    monkeypatch.setattr(
        pipeline,
        "STEPS",
        [(s, broken if s == Step.DRAFT_EMAIL else f) for s, f in pipeline.STEPS],
    )
    workflow = new_workflow()
    countdowns = run_until_settled(workflow.pk)
    workflow.refresh_from_db()
    assert workflow.status == Status.FAILED
    assert "retries exhausted after 3 attempts" in workflow.last_error
    errors = list(WorkflowError.objects.filter(workflow=workflow))
    assert [e.exception_type for e in errors] == ["KeyError"] * 3
    assert all("Traceback" in e.traceback and "surprise" in e.traceback for e in errors)
    assert len(countdowns) == 2 and all(c > 0 for c in countdowns)
    settings.ALERT_EMAILS = ["ops@example.com"]
    assert alerts.send_alerts()["failed"] == 1
    assert f"#{workflow.pk} failed" in mailoutbox[-1].body
    # alerts carry the reason class, never the error text (issue #14)
    assert "Reason: draft_email: KeyError (retries exhausted)" in mailoutbox[-1].body


def test_a_300_character_company_still_reaches_awaiting_approval():
    workflow = new_workflow(company="C" * 300)
    run_until_settled(workflow.pk)
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL
    subject = workflow.draft.subject
    assert len(subject) == 300 and subject.endswith("…")


def test_an_address_too_long_for_its_column_fails_with_the_reason():
    # An event delivery carries no email; the CRM contact's may be anything.
    workflow = new_workflow(email="")
    Workflow.objects.filter(pk=workflow.pk).update(
        contact={"email": ("x" * 250) + "@acme.test"},
        step_log={Step.RESOLVE_CONTACT: {"attempts": 1, "finished_at": "2026-12-01T00:00:00Z"}},
    )
    run_until_settled(workflow.pk)
    workflow.refresh_from_db()
    assert workflow.status == Status.FAILED
    assert "at most 254" in workflow.last_error
    assert WorkflowError.objects.filter(workflow=workflow, retryable=False).exists()


def _crashed_mid_step(attempts: int) -> Workflow:
    """A running workflow whose worker died in its ``attempts``-th try of drafting."""
    workflow = new_workflow()
    Workflow.objects.filter(pk=workflow.pk).update(
        status=Status.RUNNING,
        current_step=Step.DRAFT_EMAIL,
        attempts=attempts,
        claimed_by="dead-task",
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1),
        step_log={
            Step.RESOLVE_CONTACT: {"attempts": 1, "finished_at": timezone.now().isoformat()},
            Step.DRAFT_EMAIL: {"attempts": attempts, "started_at": timezone.now().isoformat()},
        },
    )
    return workflow


def test_the_sweeper_fails_a_workflow_that_used_every_attempt():
    workflow = _crashed_mid_step(attempts=3)
    result = sweep()
    workflow.refresh_from_db()
    assert result.exceeded == 1 and result.expired_leases == 0
    assert workflow.status == Status.FAILED
    assert EXCEEDED in workflow.last_error
    error = WorkflowError.objects.get(workflow=workflow)
    assert error.exception_type == "ExceededAttempts"
    # Recorded as run_workflow records the same condition, so alerts class both alike.
    assert error.retryable is True
    assert last_transition_to(workflow.pk, Status.FAILED).actor == "sweeper"
    assert sweep().exceeded == 0  # ended: never swept again


def test_the_sweeper_releases_a_workflow_with_attempts_left():
    workflow = _crashed_mid_step(attempts=2)
    assert sweep().expired_leases == 1
    workflow.refresh_from_db()
    assert workflow.status == Status.RUNNING and workflow.claimed_by == ""


def test_a_redelivered_task_never_runs_a_step_past_the_limit():
    workflow = _crashed_mid_step(attempts=3)
    with pytest.raises(pipeline.StepFailed):
        pipeline.run_workflow(workflow.pk, task_id="redelivered")
    workflow.refresh_from_db()
    assert workflow.status == Status.FAILED
    assert workflow.attempts == 3
    assert "exceeded attempts" in workflow.last_error
    error = WorkflowError.objects.get(workflow=workflow)
    assert (error.exception_type, error.retryable) == ("ExceededAttempts", True)
