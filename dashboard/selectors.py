"""Reads for the operator pages. Every function here runs a fixed, small number of queries,
whatever the size of the tables: lists are keyset-paginated (no OFFSET, no COUNT(*) of the
whole table) and counts are capped with a LIMITed subquery."""

from __future__ import annotations

import datetime as dt
import hashlib
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import Coalesce, TruncDay
from django.utils import timezone

from intake.models import FormSubmission
from workflows.models import AuditEvent, Status, Step, Trigger, Workflow, live_runs

PAGE_SIZE = 25
#: Tab counts stop at this many: "1000+" is all an operator needs, and it keeps each count an
#: index range scan of at most COUNT_CAP + 1 rows instead of a scan of the whole table.
COUNT_CAP = 1000
COUNTS_CACHE_SECONDS = 60
OVERVIEW_CACHE_SECONDS = 60
#: A send claimed this long ago without an outcome is shown as possibly lost.
SENDING_STALE_AFTER = dt.timedelta(minutes=5)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class WorkflowFilters:
    status: str = ""
    q: str = ""
    form_id: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    #: Exact lead email (the API and the replay command filter on it; intake lowercases it).
    email: str = ""
    trigger: str = ""

    def apply(self, qs: QuerySet[Workflow], *, with_status: bool = True) -> QuerySet[Workflow]:
        if with_status and self.status:
            qs = qs.filter(status=self.status)
        if self.email:
            qs = qs.filter(submission__email=self.email.strip().lower())
        if self.trigger:
            qs = qs.filter(trigger=self.trigger)
        if self.q:
            q = self.q
            # "<> ''" adds nothing (a search term is never empty), and lets the planner use
            # the trigram indexes, which leave empty values out (intake migration 0006).
            qs = qs.filter(
                Q(submission__email__icontains=q) & ~Q(submission__email="")
                | Q(submission__first_name__icontains=q) & ~Q(submission__first_name="")
                | Q(submission__last_name__icontains=q) & ~Q(submission__last_name="")
                | Q(submission__company__icontains=q) & ~Q(submission__company="")
            )
        if self.form_id:
            qs = qs.filter(submission__form_id=self.form_id)
        if self.date_from:
            start = _start_of(self.date_from)
            # The submission's workflow_at is never before its workflows' created_at, so
            # this adds no row and drops none: it lets the form, the date and the search meet
            # in one bitmap on form_submissions (submission_form_idx and the trigram indexes)
            # before any workflow is read. NULL: a row stored without it (older code paths).
            qs = qs.filter(
                Q(submission__workflow_at__gte=start) | Q(submission__workflow_at__isnull=True),
                created_at__gte=start,
            )
        if self.date_to and self.date_to < dt.date.max:  # the last day has no day after it
            qs = qs.filter(created_at__lt=_start_of(self.date_to + dt.timedelta(days=1)))
        return qs

    def cache_key(self) -> str:
        """The filter as a cache key, with the current time zone: the dates become times in
        it (``_start_of``), so the same dates select different rows for two operators.
        Hashed: the search and the email are what the operator typed (spaces, control
        characters, any length), which memcached refuses in a key."""
        text = (
            f"{self.q}|{self.form_id}|{self.date_from}|{self.date_to}|{self.email}|{self.trigger}"
            f"|{timezone.get_current_timezone_name()}"
        )
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())


@contextmanager
def serial_plans(filters: WorkflowFilters) -> Iterator[None]:
    """A search's reads inside run without parallel workers (PostgreSQL; else a no-op).

    Every list read stops at a LIMIT (a page of 26 rows, a count of 1,001), but a search
    term's matches are estimated from the trigram indexes at a few hundred where there may be
    166,000 ("globex"), so the planner costed the walks for all of them and split them across
    two workers. Starting the workers took longer than the walks (page and counts 25 ms
    serially, 45 ms in parallel, at 1M workflows), and on a busy 2-CPU machine three
    processes per query made the search pages' times jump (92-133 ms p95 in some bench
    runs). Without a search term the plans are serial anyway, and the page pays nothing
    extra. SET LOCAL ends with the transaction.
    """
    if not filters.q or connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        yield


# --- Keyset cursor: "<microseconds since epoch>_<id>", exact (no float rounding) ----------------


def encode_cursor(workflow: Workflow) -> str:
    micros = (workflow.created_at - _EPOCH) // dt.timedelta(microseconds=1)
    return f"{micros}_{workflow.pk}"


def decode_cursor(token: str) -> tuple[dt.datetime, int] | None:
    """The cursor's (created_at, id), or None for anything we did not hand out: not two
    ASCII integers, a time outside what datetime holds, an id outside a bigint."""
    parts = token.split("_", 1)
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) <= 19 for p in parts):
        return None
    micros, pk = (int(part) for part in parts)
    if pk >= 2**63:
        return None
    try:
        return _EPOCH + dt.timedelta(microseconds=micros), pk
    except OverflowError:
        return None


@dataclass
class WorkflowPage:
    rows: list[Workflow]
    older: str | None = None
    newer: str | None = None
    is_first: bool = True


def list_queryset() -> QuerySet[Workflow]:
    """Rows for tables: lead and draft in the same query; big JSON columns left out."""
    return Workflow.objects.select_related("submission", "draft").defer(
        "submission__raw_payload", "step_log", "contact", "last_error"
    )


def workflow_page(
    filters: WorkflowFilters, *, before: str = "", after: str = "", size: int = PAGE_SIZE
) -> WorkflowPage:
    """One page, newest first, keyset-paginated on (created_at, id). One query (LIMIT size+1)."""
    qs = filters.apply(list_queryset())
    if after and (cursor := decode_cursor(after)):
        ts, pk = cursor
        chunk = list(
            qs.filter(Q(created_at__gt=ts) | Q(created_at=ts, pk__gt=pk)).order_by(
                "created_at", "id"
            )[: size + 1]
        )
        has_newer = len(chunk) > size
        rows = list(reversed(chunk[:size]))
        page = WorkflowPage(rows=rows, is_first=not has_newer)
        page.newer = encode_cursor(rows[0]) if has_newer and rows else None
        page.older = encode_cursor(rows[-1]) if rows else None
        return page
    if before and (cursor := decode_cursor(before)):
        ts, pk = cursor
        qs = qs.filter(Q(created_at__lt=ts) | Q(created_at=ts, pk__lt=pk))
    chunk = list(qs.order_by("-created_at", "-id")[: size + 1])
    rows = chunk[:size]
    page = WorkflowPage(rows=rows, is_first=not before)
    page.older = encode_cursor(rows[-1]) if len(chunk) > size else None
    page.newer = encode_cursor(rows[0]) if before and rows else None
    return page


@dataclass(frozen=True)
class TabCount:
    n: int
    #: True when there are more than ``n``: the count stopped at its cap.
    more: bool = False

    def __str__(self) -> str:
        if self.more:
            return f"{self.n}+" if self.n else ""
        return str(self.n)


_WORKFLOWS, _AUDIT = Workflow._meta.db_table, AuditEvent._meta.db_table
#: Model table names only, no input.
_STAMP_SQL = f"SELECT (SELECT MAX(id) FROM {_WORKFLOWS}), (SELECT MAX(id) FROM {_AUDIT})"  # noqa: S608


def data_stamp() -> str:
    """Changes whenever a workflow is created or changes state: the newest workflow id and the
    newest audit row id (every transition writes one). Two index-only probes in one query.

    The tab counts and the chart are cached under it, so a poll that brings a new row also
    brings counts and bars that include it (issue #15), and an idle console costs no counts.
    """
    with connection.cursor() as cursor:
        cursor.execute(_STAMP_SQL)
        newest_workflow, newest_audit = cursor.fetchone()
    return f"{newest_workflow or 0}.{newest_audit or 0}"


#: In ``status_counts``: how many rows "Replay all failed" would replay (``failed_matching``).
REPLAYABLE = "replayable"


def status_counts(filters: WorkflowFilters, stamp: str | None = None) -> dict[str, TabCount]:
    """Counts for the tabs, keyed by status ("" is All), capped, cached per ``data_stamp``;
    and under REPLAYABLE, the failed rows of those counted that "Replay all failed" would
    replay (not one already replayed or with a live run), counted in the same query as the
    failed rows, so the button and the tabs show one moment.

    Without a text search each status is ``SELECT COUNT(*) FROM (… WHERE status = %s … LIMIT
    1001)``, an index range scan on (status, created_at). With a search, ten such counts
    would each walk a status's rows testing the search, so there is one capped query instead:
    the statuses of at most COUNT_CAP + 1 matches, served by the trigram indexes. Below the
    cap its counts are exact; above it they are lower bounds ("37+"). The cache means a burst
    of page loads costs one round.
    """
    key = f"dashboard:counts:{filters.cache_key()}:{stamp or data_stamp()}"
    counts = cache.get(key)
    if counts is None:
        base = filters.apply(Workflow.objects.order_by(), with_status=False)
        # 1 for a row the replay-all would replay; the EXISTS runs for failed rows only.
        replayable = Case(When(_replayable(), then=1), default=0)
        if filters.q:
            sample = list(base.annotate(r=replayable).values_list("status", "r")[: COUNT_CAP + 1])
            more = len(sample) > COUNT_CAP
            statuses = [status for status, _r in sample]
            counts = {s: TabCount(statuses.count(s), more) for s in Status.values}
            counts[""] = TabCount(min(len(sample), COUNT_CAP), more)
            counts[REPLAYABLE] = TabCount(sum(r for _s, r in sample[:COUNT_CAP]), more)
        else:
            capped = {
                s: base.filter(status=s)[: COUNT_CAP + 1].count()
                for s in Status.values
                if s != Status.FAILED
            }
            failed = (
                base.filter(status=Status.FAILED)
                .annotate(r=replayable)[: COUNT_CAP + 1]
                .aggregate(n=Count("id"), replayable=Coalesce(Sum("r"), 0))
            )
            capped[Status.FAILED] = failed["n"]
            counts = {s: TabCount(min(n, COUNT_CAP), n > COUNT_CAP) for s, n in capped.items()}
            total = sum(capped.values())
            counts[""] = TabCount(min(total, COUNT_CAP), total > COUNT_CAP)
            more = failed["n"] > COUNT_CAP  # a lower bound then: only the sample was looked at
            counts[REPLAYABLE] = TabCount(min(failed["replayable"], COUNT_CAP), more)
        cache.set(key, counts, COUNTS_CACHE_SECONDS)
    return counts


#: Distinct form ids by a loose index scan: each step is one probe of ``submission_form_idx``
#: for the next form id above the last, so 25 forms cost 25 probes instead of a DISTINCT over
#: every submission (93 ms at 1M rows). Plain SQL that PostgreSQL and SQLite both run.
_FORM_IDS_SQL = """
WITH RECURSIVE forms(form_id) AS (
    SELECT MIN(form_id) FROM {table} WHERE form_id > ''
    UNION ALL
    SELECT (SELECT MIN(s.form_id) FROM {table} s WHERE s.form_id > forms.form_id)
    FROM forms WHERE forms.form_id IS NOT NULL
)
SELECT form_id FROM forms WHERE form_id IS NOT NULL LIMIT %s
"""


def form_choices(limit: int = 100) -> list[str]:
    """Distinct form ids for the filter, cached for a minute (forms change rarely)."""
    forms = cache.get("dashboard:forms")
    if forms is None:
        with connection.cursor() as cursor:
            cursor.execute(
                _FORM_IDS_SQL.format(
                    table=connection.ops.quote_name(FormSubmission._meta.db_table)
                ),
                [limit],
            )
            forms = [row[0] for row in cursor.fetchall()]
        cache.set("dashboard:forms", forms, 60)
    return forms


def failed_matching(filters: WorkflowFilters) -> QuerySet[Workflow]:
    """The failed workflows a "Replay all failed" button acts on (the filter, status forced):
    never one already replayed, nor one whose submission has a live run (the replay service
    would refuse both), so pressing again reaches the rest and never the same row twice."""
    return filters.apply(Workflow.objects.filter(_replayable()), with_status=False)


def _replayable() -> Q:
    """Failed, not replayed yet, and no live run of its submission (``failed_matching``)."""
    live = live_runs(submission_id=OuterRef("submission_id"))
    return Q(status=Status.FAILED, superseded_by__isnull=True) & ~Exists(live)


def replay_candidates(filters: WorkflowFilters, *, limit: int) -> tuple[list[int], bool]:
    """Ids of the failed workflows matching ``filters``, oldest first, at most ``limit``; and
    whether more match. The dashboard's and the API's "replay all failed" both use this."""
    ids = list(
        failed_matching(filters)
        .order_by("created_at", "id")
        .values_list("id", flat=True)[: limit + 1]
    )
    return ids[:limit], len(ids) > limit


# --- Detail -------------------------------------------------------------------------------------


def workflow_detail(workflow_id: int) -> Workflow:
    return Workflow.objects.select_related("submission", "draft__approver").get(pk=workflow_id)


@dataclass
class TimelineEntry:
    at: dt.datetime
    kind: str  # "audit", "step" or "error"
    title: str
    actor: str = ""
    text: str = ""
    traceback: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, dt.UTC)


_ATTACH_TITLES = {
    Step.RESOLVE_CONTACT: "contact attach ended",
    Step.CREATE_CRM_TASK: "task created by the contact attach",
}


def _step_notes(step: str, info: dict[str, Any], step_log: dict[str, Any]) -> tuple[str, str]:
    """A step's own note and the note of the background attach that came later (shown at
    ``attached_at``). Step logs written before the two were kept apart hold the attach's note
    in ``note`` (resolve_contact, with ``attached_at``) or "task N" (create_crm_task, when the
    contact was attached): those are the attach's, not the step's."""
    note, attach_note = str(info.get("note") or ""), str(info.get("attach_note") or "")
    contact_entry = step_log.get(Step.RESOLVE_CONTACT) or {}
    legacy = (
        isinstance(contact_entry, dict)
        and contact_entry.get("attached_at")
        and "attach_note" not in contact_entry
    )
    attach_made = step == Step.RESOLVE_CONTACT or (
        step == Step.CREATE_CRM_TASK and note.startswith("task ")
    )
    if legacy and not attach_note and attach_made:
        return "", note
    return note, attach_note


def workflow_timeline(workflow: Workflow) -> list[TimelineEntry]:
    """Audit events, step timings and errors, merged oldest first. Two queries."""
    entries: list[TimelineEntry] = []
    for event in AuditEvent.objects.filter(workflow_id=workflow.pk).order_by("created_at", "id"):
        title = event.action
        if event.from_status or event.to_status:
            title = f"{event.from_status or '∅'} → {event.to_status}"
        entries.append(
            TimelineEntry(
                at=event.created_at,
                kind="audit",
                title=title,
                actor=event.actor,
                text=event.reason,
                details=event.details,
            )
        )
    step_log = workflow.step_log or {}
    contact_entry = step_log.get(Step.RESOLVE_CONTACT)
    contact_attached = (
        _parse_time(contact_entry.get("attached_at")) if isinstance(contact_entry, dict) else None
    )
    for step, info in step_log.items():
        if not isinstance(info, dict):
            continue
        started, finished = (
            _parse_time(info.get("started_at")),
            _parse_time(info.get("finished_at")),
        )
        note, attach_note = _step_notes(step, info, step_log)
        if started or finished:
            took = ""
            if started and finished:
                took = f" in {(finished - started).total_seconds():.2f}s"
            state = "finished" if finished else "started"
            entries.append(
                TimelineEntry(
                    at=started or finished,  # type: ignore[arg-type]
                    kind="step",
                    title=f"step {step} {state}{took}",
                    text=" · ".join(
                        p
                        for p in (
                            f"attempts: {info['attempts']}" if info.get("attempts") else "",
                            note,
                        )
                        if p
                    ),
                )
            )
        attached = _parse_time(info.get("attached_at")) or contact_attached
        if attach_note and attached:
            # The background contact attach (workflows.pipeline.contact_attach), at its time.
            entries.append(
                TimelineEntry(
                    at=attached,
                    kind="step",
                    title=f"step {step}: {_ATTACH_TITLES.get(step, 'contact attached')}",
                    text=attach_note,
                )
            )
    for error in workflow.errors.all():
        entries.append(
            TimelineEntry(
                at=error.created_at,
                kind="error",
                title=f"{error.step} attempt {error.attempt}: {error.exception_type}",
                text=error.message
                + ("" if error.retryable else " (permanent)")
                + (f" · retry in {error.retry_in_seconds:.0f}s" if error.retry_in_seconds else ""),
                traceback=error.traceback,
            )
        )
    entries.sort(key=lambda e: e.at)
    return entries


def other_runs(workflow: Workflow) -> list[Workflow]:
    """Earlier and later runs (replays) of the same submission."""
    return list(
        Workflow.objects.filter(submission_id=workflow.submission_id)
        .exclude(pk=workflow.pk)
        .only("id", "status", "trigger", "shadow", "created_at")
        .order_by("-created_at")[:20]
    )


def send_outcome_unknown(workflow: Workflow, now: dt.datetime | None = None) -> bool:
    if workflow.status == Status.SEND_UNKNOWN:
        return True
    now = now or timezone.now()
    return workflow.status == Status.SENDING and workflow.updated_at < now - SENDING_STALE_AFTER


# --- Inbox --------------------------------------------------------------------------------------


def inbox_queryset() -> QuerySet[Workflow]:
    """Drafts waiting for a human, oldest first: the longest-waiting lead is at the top."""
    return (
        list_queryset()
        .select_related("draft__edited_by")
        .filter(status=Status.AWAITING_APPROVAL)
        .order_by("created_at", "id")
    )


def inbox_row(workflow_id: int) -> Workflow | None:
    """One inbox row, whatever its status now (an action on it has just decided it)."""
    return list_queryset().select_related("draft__edited_by").filter(pk=workflow_id).first()


# --- Chart and medians --------------------------------------------------------------------------

OUTCOMES: list[tuple[str, str, tuple[str, ...]]] = [
    ("done", "Sent / completed", (Status.SENT, Status.COMPLETED)),
    ("waiting", "Awaiting approval", (Status.AWAITING_APPROVAL, Status.APPROVED)),
    (
        "in_progress",
        "In progress",
        (Status.PENDING, Status.RUNNING, Status.SENDING, Status.SEND_UNKNOWN),
    ),
    ("rejected", "Rejected", (Status.REJECTED,)),
    ("failed", "Failed", (Status.FAILED,)),
]
_OUTCOME_OF = {status: key for key, _label, statuses in OUTCOMES for status in statuses}


def submissions_per_day(days: int = 7, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """First runs (trigger=webhook, one per submission) per day by outcome: one GROUP BY query."""
    now = now or timezone.localtime()
    first_day = (now - dt.timedelta(days=days - 1)).date()
    rows = (
        Workflow.objects.filter(trigger=Trigger.WEBHOOK, created_at__gte=_start_of(first_day))
        .annotate(day=TruncDay("created_at"))
        .values("day", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_day = {
        first_day + dt.timedelta(days=i): {key: 0 for key, _l, _s in OUTCOMES} for i in range(days)
    }
    for row in rows:
        day = timezone.localtime(row["day"]).date() if timezone.is_aware(row["day"]) else row["day"]
        if isinstance(day, dt.datetime):
            day = day.date()
        if day in by_day:
            by_day[day][_OUTCOME_OF.get(row["status"], "in_progress")] += row["n"]
    return [{"day": day, "counts": counts} for day, counts in by_day.items()]


#: The medians look at the most recent this-many events of the window: enough for a stable
#: median, and a bounded cost (at 1M workflows a 7-day window holds ~64,000 drafts, and
#: joining them all cost 190 ms a page load; bench/dashboard.py).
MEDIAN_SAMPLE = 2000


def _since(start: str) -> ExpressionWrapper:
    """The event's ``created_at`` minus ``start``, computed by the database."""
    return ExpressionWrapper(F("created_at") - F(start), output_field=DurationField())


def _median(durations: list[dt.timedelta]) -> dt.timedelta | None:
    return statistics.median(durations) if durations else None


def median_time_to_draft(days: int = 7) -> dt.timedelta | None:
    """Workflow created → moved to awaiting_approval: the median over the newest MEDIAN_SAMPLE
    such moves of the last ``days``. One query: a walk of the audit index, newest first, with
    each move's workflow read by its primary key.

    The workflow's ``created_at`` is a subquery per row, not a join: joined, the planner
    costed the walk for the whole week (~64,000 moves at 1M workflows) instead of the 2,000 it
    reads, and ran it as a parallel plan whose workers took longer to start than the walk
    (29 ms against 9 ms in-process at 1M workflows, docs/performance.md)."""
    since = timezone.now() - dt.timedelta(days=days)
    created_at = Workflow.objects.filter(pk=OuterRef("workflow_id")).values("created_at")
    rows = (
        AuditEvent.objects.filter(
            action="workflow.transition",
            to_status=Status.AWAITING_APPROVAL,
            created_at__gte=since,
            workflow__isnull=False,
        )
        .order_by("-created_at")
        .annotate(workflow_created_at=Subquery(created_at[:1]))
        .annotate(duration=_since("workflow_created_at"))
        .values_list("duration", flat=True)[:MEDIAN_SAMPLE]
    )
    # The join left out a move whose workflow is gone, the subquery gives it NULL (neither
    # happens: a workflow's audit rows are deleted with it).
    return _median([d for d in rows if d is not None])


def median_time_to_approval(days: int = 7) -> dt.timedelta | None:
    """Draft held for approval → approved by a human: the median over the newest
    MEDIAN_SAMPLE approvals of the last ``days``. One query: a walk of
    ``audit_transition_idx`` (to_status, newest first) that stops at MEDIAN_SAMPLE rows.

    Every move to approved is from awaiting_approval (the state machine has no other; a test
    holds it to that), so the query does not say ``from_status`` as well: with it, the
    planner took the two columns for independent, expected a few hundred rows, and fetched
    and sorted the whole week's approvals (~11,000 at 1M workflows) to keep 2,000 (10 ms
    against 6 ms)."""
    since = timezone.now() - dt.timedelta(days=days)
    held_at = AuditEvent.objects.filter(
        workflow_id=OuterRef("workflow_id"),
        action="workflow.transition",
        to_status=Status.AWAITING_APPROVAL,
    ).order_by("created_at")
    rows = (
        AuditEvent.objects.filter(
            action="workflow.transition",
            to_status=Status.APPROVED,
            created_at__gte=since,
        )
        .annotate(held_at=Subquery(held_at.values("created_at")[:1]))
        .order_by("-created_at")
        .annotate(duration=_since("held_at"))
        .values_list("duration", flat=True)[:MEDIAN_SAMPLE]
    )
    return _median([d for d in rows if d is not None])


def overview(days: int = 7, stamp: str | None = None) -> dict[str, Any]:
    """The list page's overview: the chart, cached per ``data_stamp`` (so it moves with the
    table and the tabs), and the two medians, cached for a minute (they read a week of
    history, which need not be fresher than that)."""
    key = f"dashboard:overview:{days}"
    medians = cache.get(key)
    if medians is None:
        medians = {
            "median_to_draft": median_time_to_draft(days),
            "median_to_approval": median_time_to_approval(days),
        }
        cache.set(key, medians, OVERVIEW_CACHE_SECONDS)
    zone = timezone.get_current_timezone_name()
    chart_key = f"dashboard:per-day:{days}:{zone}:{timezone.localdate()}:{stamp or data_stamp()}"
    per_day = cache.get(chart_key)
    if per_day is None:
        per_day = submissions_per_day(days)
        cache.set(chart_key, per_day, OVERVIEW_CACHE_SECONDS)
    return {"per_day": per_day, **medians}
