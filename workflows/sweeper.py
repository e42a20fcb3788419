"""The stuck-work sweeper: re-enqueues what a lost enqueue or a dead worker left behind.

Two sweepers never double-enqueue: rows are claimed with ``SELECT … FOR UPDATE SKIP LOCKED``
and stamped in the same transaction, so a second sweeper neither waits for nor sees them.
Each run is bounded (``SWEEPER_BATCH_SIZE`` per kind).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import DurationField, ExpressionWrapper, F, Q, QuerySet, TextField, Value
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast
from django.utils import timezone

from workflows import metrics
from workflows.models import Status, Step, Workflow
from workflows.pipeline import ExceededAttempts, _fail, contact_attach_later
from workflows.services import SEND_TASK, workflows_enqueue

log = logging.getLogger("leadline.sweeper")


EXCEEDED = "exceeded attempts (sweeper)"


@dataclass
class SweepResult:
    pending: int = 0
    expired_leases: int = 0
    sends: int = 0
    published: int = 0
    #: Expired leases whose step had used every attempt: failed, not re-run.
    exceeded: int = 0
    #: Waiting drafts whose contact attach (issue #16) was lost: published again.
    attaches: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def sweep(*, now: datetime | None = None, batch_size: int | None = None) -> SweepResult:
    now = now or timezone.now()
    batch = batch_size or settings.SWEEPER_BATCH_SIZE
    stale = now - timedelta(seconds=settings.SWEEPER_PENDING_AFTER_SECONDS)
    result = SweepResult()
    with transaction.atomic():
        # Lost enqueues: pending rows nobody published, or published long ago and never run
        # (backed off by age, see _backed_off).
        pending = list(
            _backed_off(
                Workflow.objects.select_for_update(skip_locked=True)
                .filter(status=Status.PENDING, created_at__lt=stale)
                .exclude(enqueued_at__gte=stale),
                now,
            )
            .order_by("created_at")
            .values_list("pk", flat=True)[:batch]
        )
        Workflow.objects.filter(pk__in=pending).update(enqueued_at=now)
        # Dead workers: running rows whose lease ran out. Releasing the claim lets the next
        # task take the lease; the fresh lease keeps the next sweep from re-enqueueing it.
        expired_rows = list(
            Workflow.objects.select_for_update(skip_locked=True)
            .filter(status=Status.RUNNING, lease_expires_at__lt=now)
            .order_by("lease_expires_at")
            .values_list("pk", "attempts", "current_step")[:batch]
        )
        # A worker died in each of the step's allowed attempts: running it again would go past
        # WORKFLOW_MAX_ATTEMPTS, so it ends here, with an error row, and is alerted as failed.
        exceeded = [
            (pk, attempts, step)
            for pk, attempts, step in expired_rows
            if attempts >= settings.WORKFLOW_MAX_ATTEMPTS
        ]
        for pk, attempts, step in exceeded:
            _fail_exceeded(pk, attempts, step)
        failed_ids = {pk for pk, _attempts, _step in exceeded}
        expired = [pk for pk, _attempts, _step in expired_rows if pk not in failed_ids]
        Workflow.objects.filter(pk__in=expired).update(
            claimed_by="",
            lease_expires_at=now + timedelta(seconds=settings.WORKFLOW_LEASE_SECONDS),
            enqueued_at=now,
        )
        # Sends whose task message was lost (broker down at approval). Re-publishing is safe:
        # the send task never resends an attempt whose outcome is unknown.
        sends = list(
            Workflow.objects.select_for_update(skip_locked=True)
            .filter(status=Status.SENDING, updated_at__lt=stale)
            .exclude(enqueued_at__gte=stale)
            .values_list("pk", flat=True)[:batch]
        )
        Workflow.objects.filter(pk__in=sends).update(enqueued_at=now)
        # Drafts whose contact attach message was lost: approval waits for it (pipeline.py).
        # A chain whose attach lease still runs is alive (its next try waits out a countdown,
        # perhaps behind a queue): publishing another would only flood the queue with tries
        # that find the lease taken, and push the live chain's next try further back. And a
        # chain this sweeper started gets a lease's length to reach a worker before another.
        restarted = now - timedelta(
            seconds=max(settings.SWEEPER_PENDING_AFTER_SECONDS, settings.WORKFLOW_LEASE_SECONDS)
        )
        attaches = list(
            _backed_off(
                Workflow.objects.select_for_update(skip_locked=True)
                .filter(
                    status=Status.AWAITING_APPROVAL,
                    updated_at__lt=stale,
                    **{f"step_log__{Step.RESOLVE_CONTACT}__contact_pending": True},
                )
                .exclude(enqueued_at__gte=restarted)
                # Live chains left out in SQL, not after the slice: a batch of live ones
                # would otherwise hide every dead chain behind it, sweep after sweep.
                .alias(lease_until=_ATTACH_LEASE_UNTIL)
                .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now.isoformat())),
                now,
            )
            .order_by("updated_at", "pk")  # the longest-waiting drafts first
            .values_list("pk", flat=True)[:batch]
        )
        Workflow.objects.filter(pk__in=attaches).update(enqueued_at=now)
    result.attaches = len(attaches)
    for pk in attaches:
        # attempt 1: look for the CRM task's marker first, in case a lost try created it.
        result.published += contact_attach_later(pk, misses=0, attempt=1, countdown=0)
    result.pending, result.expired_leases, result.sends = len(pending), len(expired), len(sends)
    result.exceeded = len(exceeded)
    if sends:
        result.published += workflows_enqueue(sends, task=SEND_TASK)
        metrics.SWEPT.labels("send").inc(len(sends))
    if pending or expired:
        result.published += workflows_enqueue([*pending, *expired])
        metrics.SWEPT.labels("pending").inc(len(pending))
        metrics.SWEPT.labels("expired_lease").inc(len(expired))
    if exceeded:
        log.error("Sweeper failed workflows that used every attempt", extra=result.as_dict())
    if pending or expired or sends or attaches:
        log.warning("Sweeper re-enqueued stuck workflows", extra=result.as_dict())
    return result


#: step_log[resolve_contact].attach_lease[1]: until when a contact attach chain holds its lease
#: (ISO text, compared as pipeline.attach_chain_alive compares it).
_ATTACH_LEASE_UNTIL = Cast(  # plain text: a key transform's own lookups parse the value as JSON
    KeyTextTransform(
        "1", KeyTransform("attach_lease", KeyTransform(Step.RESOLVE_CONTACT, "step_log"))
    ),
    TextField(),
)


def _backed_off(rows: QuerySet[Workflow], now: datetime) -> QuerySet[Workflow]:
    """The rows never published, or idle since their last publish at least as long as they
    had waited for it since created (half their age).

    Under a backlog longer than the sweeper's period, re-publishing every period put one
    message per row per period in the queue (48,718 for 500 leads in the worker-kill test,
    and still 16,976 contact attaches after pending rows were backed off); this puts about
    log2(backlog / period) per row, and a row whose message was truly lost waits at most
    half its age for the next one."""
    return rows.alias(
        waited=_since("created_at", F("enqueued_at")), idle=_since("enqueued_at", now)
    ).filter(Q(enqueued_at__isnull=True) | Q(waited__lte=F("idle")))


def _since(column: str, until: datetime | F) -> ExpressionWrapper:
    """until - column, as a duration (no division: SQLite's durations do not divide)."""
    end = until if isinstance(until, F) else Value(until)
    return ExpressionWrapper(end - F(column), output_field=DurationField())


def _fail_exceeded(workflow_id: int, attempts: int, step: str) -> None:
    """Fail it as the pipeline fails a redelivered step past the limit (run_workflow): the
    same error row (ExceededAttempts, retryable: the attempts ran out), move and metric."""
    _fail(
        Workflow.objects.get(pk=workflow_id),
        step or Step.RESOLVE_CONTACT,
        attempts,
        ExceededAttempts(f"{attempts} attempts whose worker never returned"),
        retryable=True,
        why=EXCEEDED,
        actor="sweeper",
    )
