"""Workflow services: enqueue and replay. Every caller (webhook, sweeper, dashboard, admin,
API, management command) goes through these, so each action has one code path."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from celery import current_app
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from intake.models import FormSubmission
from workflows.models import AuditEvent, Status, Trigger, Workflow, live_runs, status_text

log = logging.getLogger("leadline.workflows")

PROCESS_TASK = "workflows.process_workflow"
SEND_TASK = "outreach.send_email"
CRM_NOTE_TASK = "outreach.write_crm_note"
ONE_LIVE_RUN = "workflow_one_live_run_per_submission"


FANOUT_TASK = "workflows.enqueue_workflows"
#: A commit that creates more new workflows than this (a webhook batch, a bulk replay) publishes
#: one ``enqueue_workflows`` message per FANOUT_CHUNK ids, and a worker publishes the per-id
#: messages. A Celery publish costs ~0.9 ms of CPU in the web process; a 100-event batch
#: spent most of its time there.
FANOUT_ABOVE = 10
FANOUT_CHUNK = 500


def workflows_enqueue(workflow_ids: Sequence[int], *, task: str = PROCESS_TASK) -> int:
    """Publish one ``task`` message (default ``process_workflow``) per id over one connection.

    Never raises for a broker outage: the rows stay as they are (``pending``) and the sweeper
    re-enqueues them once the broker is back. Returns how many were published.
    Call it after the rows are committed (``transaction.on_commit``), never inside a transaction.
    """
    return _publish(task, [[workflow_id] for workflow_id in workflow_ids])


def _publish(task: str, arguments: list[list]) -> int:
    """One message per argument list, over one broker connection, without retries."""
    # The current app is config.celery_app's (config/__init__.py creates it at start-up);
    # importing config.celery_app here would close the circle celery_app → outreach →
    # workflows.services → celery_app.
    app = current_app

    if app.conf.task_always_eager:  # unit tests only: run in-process, as apply_async would
        app.loader.import_default_modules()  # register the tasks modules, as a worker does
        for args in arguments:
            app.tasks[task].apply(args=args, throw=app.conf.task_eager_propagates)
        return len(arguments)
    published = 0
    try:
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=0, timeout=2)
            for args in arguments:
                # retry=False: an outage fails this publish at once; the sweeper retries later.
                app.send_task(task, args=args, producer=producer, retry=False)
                published += 1
    except Exception as exc:  # any broker failure: the pending rows are the outbox
        log.warning(
            "Broker unavailable; workflows left pending for the sweeper",
            extra={
                "task": task,
                "published": published,
                "unpublished": len(arguments) - published,  # messages (a fan-out holds many ids)
                "error": type(exc).__name__,
            },
        )
    return published


def workflows_publish(workflow_ids: Sequence[int]) -> int:
    """Publish ``process_workflow`` for these workflows now: one message per id, or, for more
    than FANOUT_ABOVE ids, one fan-out message per FANOUT_CHUNK ids (see FANOUT_TASK).

    Returns how many of the ids went out: always a prefix of ``workflow_ids``, so a caller can
    mark exactly those as published. Never raises for a broker outage (see _publish).
    """
    ids = list(workflow_ids)
    if len(ids) <= FANOUT_ABOVE:
        return _publish(PROCESS_TASK, [[workflow_id] for workflow_id in ids])
    chunks = [ids[start : start + FANOUT_CHUNK] for start in range(0, len(ids), FANOUT_CHUNK)]
    sent = _publish(FANOUT_TASK, [[chunk] for chunk in chunks])
    return sum(len(chunk) for chunk in chunks[:sent])


def enqueue_on_commit(workflow_ids: Sequence[int], *, task: str = PROCESS_TASK) -> None:
    """Publish ``task`` for these workflows once the current transaction commits; more than
    FANOUT_ABOVE new workflows go out as fan-out messages (see FANOUT_TASK).

    New webhook workflows do not come this way: the outbox relay publishes them
    (workflows/relay.py). Replays, sends and CRM notes do."""
    ids = list(workflow_ids)
    if not ids:
        return
    if task == PROCESS_TASK:
        transaction.on_commit(lambda: workflows_publish(ids))
    else:
        transaction.on_commit(lambda: workflows_enqueue(ids, task=task))


@dataclass(frozen=True)
class ReplayRefusal:
    workflow_id: int
    reason: str


@dataclass(frozen=True)
class ReplayResult:
    created: list[int]
    shadow: list[int]
    #: Originals not replayed, each with the reason ("already replayed as #N").
    refused: list[ReplayRefusal] = field(default_factory=list)


def _live_runs(submission_ids: Iterable[int]) -> dict[int, tuple[int, str, str]]:
    """Per submission, its live (non-terminal, non-shadow) run: (id, status, trigger)."""
    rows = live_runs(submission_id__in=list(submission_ids)).values_list(
        "submission_id", "id", "status", "trigger"
    )
    return {sub: (pk, status, trigger) for sub, pk, status, trigger in rows}


def _refusal_reason(original: Workflow, live: tuple[int, str, str] | None) -> str:
    """Why ``original`` is not replayed, without its own number: callers put it before the
    reason ("#812 not replayed: already replayed as #901"). Statuses in the dashboard's words."""
    if original.superseded_by_id is not None:
        return f"already replayed as #{original.superseded_by_id}"
    if live is None:
        return ""
    pk, status, trigger = live
    if pk == original.pk:
        return f"still {status_text(status)}; it has not ended, so there is nothing to replay yet"
    if trigger == Trigger.REPLAY:
        return f"already replayed as #{pk} (still {status_text(status)})"
    return f"#{pk}, another run of the same submission, is still {status_text(status)}"


def workflows_replay(
    *,
    workflow_ids: Iterable[int],
    user: AbstractBaseUser | None = None,
    actor: str | None = None,
    shadow: bool = False,
    reason: str = "",
    batch_size: int = 1000,
) -> ReplayResult:
    """Create a new ``pending`` workflow (trigger=replay, linked to the original) per id.

    At most one live run per submission: an original that was already replayed (its
    ``superseded_by`` is set), or whose submission still has a run that has not ended, is
    refused with the reason; so is the loser of two concurrent replays (the database's
    partial unique index decides). A replayed original is marked ``superseded_by`` the new run.

    History is otherwise never rewritten: the original keeps its status. A replay is forced
    into shadow mode (look up and draft only; no CRM task, no email) when any earlier run of the
    same submission sent, or may have sent, an email. A shadow replay asked for explicitly is a
    preview: it neither counts as live nor supersedes the original. Bulk: rows are inserted in
    batches, and the messages are published over one broker connection after commit.
    """
    if user is not None and not user.has_perm("workflows.replay_workflow"):
        raise PermissionDenied("You need the 'Can replay workflows' permission.")
    ids = list(dict.fromkeys(workflow_ids))
    actor_name = actor or (user.get_username() if user is not None else "system")
    actor_user = user if user is not None and user.is_authenticated else None
    created: list[int] = []
    shadowed: list[int] = []
    refusals: list[ReplayRefusal] = []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        with transaction.atomic():
            # Locking the originals makes a second replay of the same run wait, then see the
            # first one's superseded_by; the unique index catches replays of sibling runs.
            originals = list(
                Workflow.objects.select_for_update()
                .filter(pk__in=chunk)
                .order_by("pk")
                .only("id", "submission_id", "superseded_by_id")
            )
            wanted, refused = _replay_plan(originals, shadow=shadow)
            refusals += refused
            new, lost = _insert_replays(wanted)
            if new:
                # The dashboard's date filter: never before any of its workflows (issue #16).
                FormSubmission.objects.filter(pk__in={w.submission_id for w in new}).update(
                    workflow_at=max(w.created_at for w in new)
                )
            for original in lost:
                winner = _live_runs([original.submission_id]).get(original.submission_id)
                why = _refusal_reason(original, winner) or "a concurrent replay won; try again"
                refusals.append(ReplayRefusal(original.pk, why))
            if not shadow:
                by_id = {w.pk: w for w in originals}
                superseded = []
                for replay in new:
                    by_id[replay.replay_of_id].superseded_by_id = replay.pk
                    superseded.append(by_id[replay.replay_of_id])
                Workflow.objects.bulk_update(superseded, ["superseded_by"])
            AuditEvent.objects.bulk_create(
                [
                    AuditEvent(
                        actor=actor_name,
                        actor_user=actor_user,
                        action="workflow.replayed",
                        object_type="workflow",
                        object_id=str(w.pk),
                        workflow_id=w.pk,
                        to_status=Status.PENDING,
                        reason=reason,
                        details={"replay_of": w.replay_of_id, "shadow": w.shadow},
                    )
                    for w in new
                ]
            )
            enqueue_on_commit([w.pk for w in new])
        created += [w.pk for w in new]
        shadowed += [w.pk for w in new if w.shadow]
    return ReplayResult(created=created, shadow=shadowed, refused=refusals)


def _replay_plan(
    originals: list[Workflow], *, shadow: bool
) -> tuple[list[tuple[Workflow, bool]], list[ReplayRefusal]]:
    """Which ``originals`` get a new run, each with whether it is forced into shadow mode, and
    which are refused with the reason: workflows_replay's decision, before it writes."""
    submissions = {w.submission_id for w in originals}
    sent_submissions = set(
        Workflow.objects.filter(
            submission_id__in=submissions,
            status__in=[Status.SENT, Status.SENDING, Status.SEND_UNKNOWN],
        ).values_list("submission_id", flat=True)
    )
    live = _live_runs(submissions)
    wanted: list[tuple[Workflow, bool]] = []
    refusals: list[ReplayRefusal] = []
    for original in originals:
        is_shadow = shadow or original.submission_id in sent_submissions
        why = "" if shadow else _refusal_reason(original, live.get(original.submission_id))
        if why:
            refusals.append(ReplayRefusal(original.pk, why))
            continue
        wanted.append((original, is_shadow))
        if not is_shadow:  # a second id of the same submission in this batch
            live[original.submission_id] = (original.pk, "being replayed", Trigger.REPLAY)
    return wanted, refusals


def workflows_replay_preview(*, workflow_ids: Iterable[int], shadow: bool = False) -> ReplayResult:
    """What workflows_replay would do now, writing and locking nothing (``replay --dry-run``):
    ``created`` and ``shadow`` name the originals that would get a new run (and which of them
    in shadow mode), ``refused`` the ones it would refuse and why. A replay racing it may still
    change the answer."""
    ids = list(dict.fromkeys(workflow_ids))
    originals = list(
        Workflow.objects.filter(pk__in=ids)
        .order_by("pk")
        .only("id", "submission_id", "superseded_by_id")
    )
    wanted, refusals = _replay_plan(originals, shadow=shadow)
    return ReplayResult(
        created=[original.pk for original, _ in wanted],
        shadow=[original.pk for original, is_shadow in wanted if is_shadow],
        refused=refusals,
    )


def _insert_replays(wanted: list[tuple[Workflow, bool]]) -> tuple[list[Workflow], list[Workflow]]:
    """Insert the new runs: (inserted, originals whose insert the one-live-run index refused).

    One multi-row INSERT in a savepoint; only if a concurrent replay made it violate the index
    are the rows inserted one by one, so that each loser is told and the winners still go."""
    # Stamped as enqueued: a replay is published on commit (bulk replays as fan-out messages),
    # so the outbox relay leaves it alone; a lost publish is the sweeper's, as before.
    now = timezone.now()
    rows = [
        Workflow(
            submission_id=original.submission_id,
            status=Status.PENDING,
            trigger=Trigger.REPLAY,
            replay_of_id=original.pk,
            shadow=is_shadow,
            enqueued_at=now,
        )
        for original, is_shadow in wanted
    ]
    try:
        with transaction.atomic():
            return Workflow.objects.bulk_create(rows), []
    except IntegrityError as exc:
        if ONE_LIVE_RUN not in str(exc):
            raise
    inserted, lost = [], []
    for row, (original, _shadow) in zip(rows, wanted, strict=True):
        row.pk = None
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError as exc:
            if ONE_LIVE_RUN not in str(exc):
                raise
            lost.append(original)
        else:
            inserted.append(row)
    return inserted, lost
