"""Celery tasks of the workflow engine. Thin: ids in, one service call, retries decided by
the pipeline's error classification (never blindly on every exception)."""

from __future__ import annotations

from celery import shared_task
from celery.app.task import Task

from workflows import alerts, pipeline, services, sweeper


@shared_task(
    name="workflows.process_workflow",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # the pipeline counts attempts per step (WORKFLOW_MAX_ATTEMPTS)
    ignore_result=True,
)
def process_workflow(self: Task, workflow_id: int) -> str:
    """Run the remaining steps of one workflow. Idempotent: safe to redeliver or re-enqueue;
    each step is skipped when its output is stored. Never sends email itself."""
    try:
        outcome = pipeline.run_workflow(workflow_id, task_id=self.request.id or "")
    except pipeline.RetryLater as retry:
        raise self.retry(countdown=retry.countdown, exc=None) from None
    except pipeline.StepFailed as failed:
        return f"failed: {failed}"
    return f"{outcome.status} {outcome.detail}".strip()


@shared_task(name=pipeline.ATTACH_TASK, acks_late=True, ignore_result=True)
def attach_contact(workflow_id: int, misses: int = 0, attempt: int = 0, token: str = "") -> str:
    """Attach a new lead's HubSpot contact after its draft (pipeline.contact_attach)."""
    try:
        return pipeline.contact_attach(workflow_id, misses=misses, attempt=attempt, token=token)
    except pipeline.AttachAgain as again:
        pipeline.contact_attach_later(
            workflow_id,
            misses=again.misses,
            attempt=again.attempt,
            countdown=again.countdown,
            token=again.token,
        )
        return str(again)


@shared_task(name="workflows.enqueue_workflows", acks_late=True, ignore_result=True)
def enqueue_workflows(workflow_ids: list[int]) -> int:
    """Fan-out: publish ``process_workflow`` for each id (see services.FANOUT_TASK). A lost or
    repeated fan-out is harmless: the sweeper finds pending rows, and claims are idempotent."""
    return services.workflows_enqueue(workflow_ids)


@shared_task(name="workflows.sweep_workflows", ignore_result=True)
def sweep_workflows() -> dict[str, int]:
    """Re-enqueue lost work (run by beat every minute). Safe to run in several places at once."""
    return sweeper.sweep().as_dict()


@shared_task(name="workflows.send_alerts", ignore_result=True)
def send_alerts() -> dict[str, int]:
    """Alert operators about failures and overdue approvals (beat, every minute).
    At most one alert per workflow and condition, however often or concurrently it runs."""
    return alerts.send_alerts()
