"""Store verified webhook items: submissions, their leads, the new leads' workflows and audit
rows, and the events that are not leads, atomically.

The pending workflow rows are the outbox: nothing is published on the request. The outbox
relay (workflows/relay.py, woken by the workflows table's NOTIFY trigger) publishes them, and
the sweeper re-publishes whatever was lost.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.db import bound_cursor
from intake.contacts import contact_erase, contact_merge, contact_stop
from intake.identity import (
    CLAIM_CONFLICT,
    Claims,
    contact_window_start,
    email_and_error,
    lead_keys,
    leads_claim,
    leads_join,
    workflows_of_leads,
)
from intake.models import (
    FormSubmission,
    Lead,
    LeadKey,
    NonLeadDelivery,
    NonLeadOutcome,
    PurgedDeliveryKey,
)
from intake.payloads import NormalisedItem, RefusedEvent
from intake.routing import Decision, Route, decide
from workflows.models import AuditEvent, Status, Trigger, Workflow

_COLUMNS = (
    "dedupe_key",
    "shape",
    "signature_version",
    "raw_payload",
    "email",
    "email_error",
    "first_name",
    "last_name",
    "company",
    "phone",
    "message",
    "form_id",
    "page_uri",
    "portal_id",
    "object_id",
    "event_type",
    "submitted_at",
    "received_at",
)


@dataclass(frozen=True)
class IngestResult:
    #: New lead submissions stored (started a lead, or joined one).
    accepted_ids: list[int]
    #: Items already stored before (redeliveries, repeats in the batch): nothing new.
    duplicates: int
    #: Workflows started: one per new lead.
    workflow_ids: list[int]
    #: Submission id -> the lead it joined (stored and linked; no new workflow).
    joined: dict[int, int] = dataclasses.field(default_factory=dict)
    #: Non-lead events newly kept, by outcome (ignored / refused / applied).
    non_leads: dict[str, int] = dataclasses.field(default_factory=dict)
    #: What each applied contact lifecycle event did.
    applied: list[str] = dataclasses.field(default_factory=list)
    #: Submission id -> the workflow of the lead it joined (the number the dashboard shows).
    joined_workflows: dict[int, int | None] = dataclasses.field(default_factory=dict)


def submissions_ingest(
    *,
    items: Sequence[NormalisedItem],
    signature_version: str,
    received_at: datetime,
    trigger: str = Trigger.WEBHOOK,
    refused: Sequence[RefusedEvent] = (),
) -> IngestResult:
    """Store one delivery: each lead item once, each new lead with one pending workflow.

    Routes every item (intake/routing.py): leads are stored as submissions and start or
    join a lead (intake/identity.py; only a new lead gets a workflow); contact lifecycle
    events (privacy deletion, merge, deletion) are applied (intake/contacts.py); anything
    else, and ``refused`` events, are kept as non-lead deliveries. All in one transaction,
    so a delivery is stored whole or not at all.
    ``signature_version`` is the one that verified the request, or ``SignatureVersion.POLL``
    ("poll") for items fetched from HubSpot by the Forms poll; ``trigger`` is the new
    workflows' (``Trigger.RECONCILE`` for the poll).
    Idempotent per item: an item whose dedupe key is already stored (a HubSpot redelivery,
    or a repeat inside the batch) is counted as a duplicate and creates nothing. Nothing is
    published here: the outbox relay (workflows/relay.py) publishes the new pending workflows
    after commit. Database errors propagate.
    """
    unique: dict[str, tuple[NormalisedItem, Decision]] = {}
    for item in items:
        unique.setdefault(item.dedupe_key, (item, decide(item, settings.LEAD_EVENT_TYPES)))
    leads = [item for item, decision in unique.values() if decision.route == Route.LEAD]
    others = [(item, d) for item, d in unique.values() if d.route != Route.LEAD]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            stored = _store_in_one_statement(leads, signature_version, received_at, trigger)
        else:
            stored = _store_with_the_orm(leads, signature_version, received_at, trigger)
        kept, applied = non_leads_store(
            others=others,
            refused=refused,
            signature_version=signature_version,
            received_at=received_at,
        )
    new = [stored[item.dedupe_key] for item in leads if item.dedupe_key in stored]
    joined = {row.submission_id: row.lead_id for row in new if row.workflow_id is None}
    accepted_ids = [row.submission_id for row in new]
    workflow_ids = [row.workflow_id for row in new if row.workflow_id is not None]
    return IngestResult(
        accepted_ids,
        len(leads) + (len(items) - len(unique)) - len(accepted_ids),
        workflow_ids,
        joined,
        kept,
        applied,
        {row.submission_id: row.joined_workflow_id for row in new if row.workflow_id is None},
    )


def non_leads_store(
    *,
    others: Sequence[tuple[NormalisedItem, Decision]],
    refused: Sequence[RefusedEvent],
    signature_version: str,
    received_at: datetime,
) -> tuple[dict[str, int], list[str]]:
    """Keep each non-lead event once (ignored, refused, or a contact lifecycle event, which is
    applied the first time it is stored). Returns the new rows' counts by outcome and what
    the applied events did."""
    if not others and not refused:  # a delivery of leads only: no query at all
        return {}, []
    known = set(
        NonLeadDelivery.objects.filter(
            dedupe_key__in=[i.dedupe_key for i, _ in others] + [r.dedupe_key for r in refused]
        ).values_list("dedupe_key", flat=True)
    )
    rows, applied = [], []
    for item, decision in others:
        if item.dedupe_key in known:
            continue
        outcome, reason = NonLeadOutcome.IGNORED, decision.reason
        if decision.route != Route.IGNORED:
            outcome, reason = NonLeadOutcome.APPLIED, _apply(item, decision.route)
            applied.append(reason)
        rows.append(
            NonLeadDelivery(
                dedupe_key=item.dedupe_key,
                outcome=outcome,
                reason=_storable_json(reason),
                event_type=_storable_json(item.event_type[:100]),
                object_id=_storable_json(item.object_id[:64]),
                portal_id=item.portal_id,
                signature_version=signature_version,
                raw_payload=_storable_json(item.raw),
                received_at=received_at,
            )
        )
    for event in refused:
        if event.dedupe_key in known:
            continue
        raw = event.raw if isinstance(event.raw, dict) else {}
        kind = raw.get("subscriptionType") or raw.get("eventType")
        rows.append(
            NonLeadDelivery(
                dedupe_key=event.dedupe_key,
                outcome=NonLeadOutcome.REFUSED,
                reason=_storable_json(event.reason),
                # The sender's text: a NUL in it would fail the insert (and the delivery).
                event_type=_storable_json(kind[:100]) if isinstance(kind, str) else "",
                signature_version=signature_version,
                # Wrapped: a JSON null event would otherwise be SQL NULL.
                raw_payload={"index": event.index, "event": _storable_json(event.raw)},
                received_at=received_at,
            )
        )
    # A concurrent redelivery may have stored the same event meanwhile: keep its row.
    NonLeadDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.outcome] = counts.get(row.outcome, 0) + 1
    return counts, applied


def stored_dedupe_keys(keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` count as stored: a submission has it, or purge deleted the one that
    had it (PurgedDeliveryKey). Ingest skips them; so does the Forms poll, before it spends
    HubSpot calls on them."""
    keys = list(keys)
    stored = set(
        FormSubmission.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True)
    )
    return stored | purged_dedupe_keys(keys)


def purged_dedupe_keys(keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` were a submission's that `manage.py purge` deleted."""
    return set(
        PurgedDeliveryKey.objects.filter(dedupe_key__in=list(keys)).values_list(
            "dedupe_key", flat=True
        )
    )


def refused_body_keep(
    *, body: bytes, reason: str, signature_version: str, received_at: datetime
) -> None:
    """Keep a signed body that cannot be read as a whole (not JSON, no known shape, over
    HubSpot's batch limit) as a refused non-lead delivery, with the reason, before the
    webhook answers 400: HubSpot workflows never retry a 4xx, so this row is the only copy
    an operator can find (admin, *Non-lead deliveries*). Stored once per body; the text is
    kept as received (undecodable bytes replaced), since it may not be JSON."""
    text = body.decode("utf-8", "replace")
    row = NonLeadDelivery(
        dedupe_key="refused-body:" + hashlib.sha256(body).hexdigest(),
        outcome=NonLeadOutcome.REFUSED,
        reason=_storable_json(reason),
        signature_version=signature_version,
        raw_payload=_storable_json({"body_text": text}),
        received_at=received_at,
    )
    NonLeadDelivery.objects.bulk_create([row], ignore_conflicts=True)


def _apply(item: NormalisedItem, route: str) -> str:
    if route == Route.PRIVACY_DELETION:
        return contact_erase(contact_id=item.object_id)
    if route == Route.MERGE:
        return contact_merge(primary_id=item.object_id, merged_ids=item.merged_ids)
    reason = f"contact {item.object_id} deleted in HubSpot"
    stopped = contact_stop(contact_id=item.object_id, reason=reason)
    return f"{reason}: {len(stopped)} open workflows stopped"


@dataclass(frozen=True)
class StoredRow:
    submission_id: int
    lead_id: int
    workflow_id: int | None  # None: the submission joined an existing lead
    joined_workflow_id: int | None = None  # then: that lead's workflow (the answer names it)


Stored = dict[str, StoredRow]  # dedupe key -> what was stored, new submissions only


def _store_with_the_orm(
    rows: list[NormalisedItem],
    signature_version: str,
    received_at: datetime,
    trigger: str = Trigger.WEBHOOK,
) -> Stored:
    """Portable (SQLite, ``make run``'s default): the new lead's workflows and audit rows
    through the ORM. Runs inside submissions_ingest's transaction."""
    inserted, claims = _insert_and_claim(rows, signature_version, received_at)
    by_id = {sid: item for item, sid in ((i, inserted.get(i.dedupe_key)) for i in rows) if sid}
    workflows = Workflow.objects.bulk_create(
        Workflow(submission_id=submission_id, status=Status.PENDING, trigger=trigger)
        for submission_id in claims.started
    )
    AuditEvent.objects.bulk_create(
        _received_event(submission_id, by_id[submission_id], workflow.pk, signature_version)
        for submission_id, workflow in zip(claims.started, workflows, strict=True)
    )
    if workflows:
        # Never earlier than its workflow's created_at (the dashboard's date filter relies on it).
        FormSubmission.objects.filter(pk__in=claims.started).update(
            workflow_at=max(w.created_at for w in workflows)
        )
    started = {sid: w.pk for sid, w in zip(claims.started, workflows, strict=True)}
    return _stored(inserted, claims, started, by_id, signature_version)


def _store_in_one_statement(
    rows: list[NormalisedItem],
    signature_version: str,
    received_at: datetime,
    trigger: str = Trigger.WEBHOOK,
) -> Stored:
    """PostgreSQL: submissions, their leads and lead keys, the new leads' workflows and audit
    rows in one statement of chained data-modifying CTEs (see _one_statement), so a delivery
    costs one round trip, like the plain INSERT it is measured against (bench/ingest.py).
    Only a delivery that finds a key taken needs more (leads_join). The rows are the same
    as the portable path's (a test compares them)."""
    now = timezone.now()
    inserted: dict[str, int] = {}
    started: dict[int, int] = {}
    with bound_cursor() as cursor:
        # Arrays, not one placeholder per value: any batch is one statement of the same text.
        if rows:
            sql, params = _one_statement(rows, signature_version, received_at, now, trigger)
            cursor.execute(sql, params)
            for key, submission_id, workflow_id in cursor.fetchall():
                inserted[key] = submission_id
                if workflow_id is not None:
                    started[submission_id] = workflow_id
    by_id = {sid: item for item, sid in ((i, inserted.get(i.dedupe_key)) for i in rows) if sid}
    claims = Claims(
        started=[sid for sid in by_id if sid in started],
        joined=leads_join(
            {sid: lead_keys(item) for sid, item in by_id.items() if sid not in started}
        ),
    )
    return _stored(inserted, claims, started, by_id, signature_version)


def _insert_and_claim(
    rows: list[NormalisedItem], signature_version: str, received_at: datetime
) -> tuple[dict[str, int], Claims]:
    inserted = _insert_new_submissions(rows, signature_version, received_at)
    new = [(inserted[item.dedupe_key], item) for item in rows if item.dedupe_key in inserted]
    return inserted, leads_claim(new)


def _stored(
    inserted: dict[str, int],
    claims: Claims,
    started: dict[int, int],
    by_id: dict[int, NormalisedItem],
    signature_version: str,
) -> Stored:
    """What was stored, after writing the joined submissions' audit rows (both paths)."""
    lead_workflows: dict[int, int] = {}
    if claims.joined:  # rare: most deliveries start leads, and an empty query still costs
        lead_workflows = _joined_audit(claims.joined, by_id, signature_version)
    return {
        key: StoredRow(
            sid,
            claims.joined.get(sid, sid),
            started.get(sid),
            lead_workflows.get(claims.joined[sid]) if sid in claims.joined else None,
        )
        for key, sid in inserted.items()
    }


def _joined_audit(
    joined: dict[int, int], by_id: dict[int, NormalisedItem], signature_version: str
) -> dict[int, int]:
    """The joined submissions' audit rows; returns their leads' workflows (lead -> id)."""
    lead_workflows = workflows_of_leads(set(joined.values()))
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor="hubspot",
            action="submission.joined",
            object_type="submission",
            object_id=str(sid),
            workflow_id=lead_workflows.get(lead),
            reason=email_and_error(by_id[sid])[1],
            details={
                "shape": by_id[sid].shape,
                "signature_version": signature_version,
                "lead": lead,
            },
        )
        for sid, lead in joined.items()
    )
    return lead_workflows


def _one_statement(
    chunk: list[NormalisedItem],
    signature_version: str,
    received_at: datetime,
    now: datetime,
    trigger: str,
) -> tuple[str, dict[str, Any]]:
    """The statement (its text is the same for every delivery, so it is built once) and its
    parameters: one array per submission column, whatever the batch size."""
    workflow_cols, workflow_params = _column_values(
        Workflow, now, status=Status.PENDING, trigger=str(trigger)
    )
    audit_cols, audit_params = _column_values(
        AuditEvent,
        now,
        actor="hubspot",
        action="submission.received",
        object_type="submission",
        to_status=Status.PENDING,
    )
    wanted = [[item.dedupe_key, key] for item in chunk for key in lead_keys(item)]
    params: dict[str, Any] = dict(
        rows=_rows_json(chunk),
        table=FormSubmission._meta.db_table,
        signature_version=signature_version,
        received_at=received_at,
        now=now,
        wanted=json.dumps(wanted, separators=(",", ":")),
        expired=contact_window_start(),
    )
    params.update((f"w{i}", value) for i, value in enumerate(workflow_params))
    params.update((f"a{i}", value) for i, value in enumerate(audit_params))
    sql = _statement_text(workflow_cols, len(workflow_params), audit_cols, len(audit_params))
    return sql, params


#: Submission columns that differ per item: the fields of each row of the rows' JSON.
_ROW_COLUMNS = tuple(c for c in _COLUMNS if c not in ("signature_version", "received_at"))


@functools.cache
def _statement_text(workflow_cols: str, n_workflow: int, audit_cols: str, n_audit: int) -> str:
    quote = connection.ops.quote_name
    fields = {name: FormSubmission._meta.get_field(name) for name in _ROW_COLUMNS}
    # One row per JSON array of the column values, in _ROW_COLUMNS order (_rows_json).
    record = ", ".join(
        f"(r ->> {i})::{f.db_type(connection)}" if f.db_type(connection) != "jsonb" else f"r -> {i}"
        for i, f in enumerate(fields.values())
    )
    names = ", ".join(quote(f.column) for f in fields.values())
    selected = ", ".join(f"n.{quote(f.column)}" for f in fields.values())
    lead_created = "%(now)s"
    # Each submission's id is drawn first (n) so that it is also its own lead's id, and the
    # lead, its keys and (when every key was free) its workflow go in the same statement.
    # A key insert waits for a concurrent holder to commit; ON CONFLICT then skips it (unless
    # it is an expired contact key), and the submission gets no workflow here: leads_join
    # links it to the holder's lead. workflow_at is the workflows' created_at (both "now").
    # Identifiers come from the models; every value is a bound parameter.
    return _compact(f"""
        WITH v ({names}) AS (
            SELECT {record} FROM jsonb_array_elements(%(rows)s::jsonb) AS r
        ), n AS (
            SELECT nextval(pg_get_serial_sequence(%(table)s, 'id')) AS id, v.* FROM v
        ), s AS (
            INSERT INTO {quote(FormSubmission._meta.db_table)}
                (id, lead_id, signature_version, received_at, workflow_at, {names})
            SELECT n.id, n.id, %(signature_version)s, %(received_at)s, %(now)s, {selected}
            FROM n WHERE NOT EXISTS (SELECT FROM {quote(PurgedDeliveryKey._meta.db_table)} p
                WHERE p.dedupe_key = n.dedupe_key) ORDER BY n.id
            ON CONFLICT ({quote("dedupe_key")}) DO NOTHING
            RETURNING id, dedupe_key, shape, signature_version, email_error
        ), l AS (
            INSERT INTO {quote(Lead._meta.db_table)} (id, created_at)
            SELECT s.id, {lead_created} FROM s
        ), wanted AS (
            SELECT k ->> 0 AS dedupe_key, k ->> 1 AS key
            FROM jsonb_array_elements(%(wanted)s::jsonb) AS k
        ), k AS (
            INSERT INTO {quote(LeadKey._meta.db_table)} (key, lead_id, created_at)
            SELECT DISTINCT ON (wanted.key) wanted.key, s.id, {lead_created}
            FROM wanted JOIN s USING (dedupe_key)
            ORDER BY wanted.key, s.id
            {CLAIM_CONFLICT.replace("%s", "%(expired)s")}
        ), lost AS (
            SELECT wanted.dedupe_key FROM wanted JOIN s USING (dedupe_key)
            LEFT JOIN k ON k.key = wanted.key AND k.lead_id = s.id
            WHERE k.key IS NULL
        ), fresh AS (
            SELECT s.* FROM s WHERE s.dedupe_key NOT IN (SELECT dedupe_key FROM lost)
        ), w AS (
            INSERT INTO {quote(Workflow._meta.db_table)} (submission_id, {workflow_cols})
            SELECT fresh.id, {", ".join(f"%(w{i})s" for i in range(n_workflow))}
            FROM fresh ORDER BY fresh.id
            RETURNING id, submission_id
        ), a AS (
            INSERT INTO {quote(AuditEvent._meta.db_table)}
                (workflow_id, object_id, reason, details, {audit_cols})
            SELECT w.id, fresh.id::text, fresh.email_error,
                jsonb_build_object(
                    'shape', fresh.shape, 'signature_version', fresh.signature_version
                ),
                {", ".join(f"%(a{i})s" for i in range(n_audit))}
            FROM w JOIN fresh ON fresh.id = w.submission_id
        )
        SELECT s.dedupe_key, s.id, w.id FROM s LEFT JOIN w ON w.submission_id = s.id
    """)  # noqa: S608


def _compact(sql: str) -> str:
    """The statement with its runs of whitespace made single spaces (it has no literal with
    two): psycopg caches the conversion of a query's placeholders only for texts up to 4 KB
    (MAX_CACHED_STATEMENT_LENGTH) and re-parses longer ones on every execute, which cost a
    form post ~0.1 ms of CPU."""
    return " ".join(sql.split())


def _rows_json(chunk: list[NormalisedItem]) -> str:
    """The per-item submission values as one JSON array of arrays (one per item, in
    _ROW_COLUMNS order): one json.dumps for the whole delivery, the payload nested as it is.
    _storable_json's repairs (a NUL, a non-finite number, a lone surrogate: jsonb refuses all
    three) run only for a delivery that needs them, so the common case is one dumps."""
    rows = [_row_values(item, item.raw) for item in chunk]
    try:
        text = json.dumps(rows, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        text.encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        text = ""
    if not text or "\\u0000" in text:
        rows = [_row_values(item, _storable_json(item.raw)) for item in chunk]
        text = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    return text


def _row_values(item: NormalisedItem, raw: Any) -> list[Any]:
    email, email_error = email_and_error(item)
    limits = _max_lengths()
    return [
        item.dedupe_key[: limits["dedupe_key"]],
        item.shape[: limits["shape"]],
        raw,
        email[: limits["email"]],
        email_error[: limits["email_error"]],
        item.first_name[: limits["first_name"]],
        item.last_name[: limits["last_name"]],
        item.company[: limits["company"]],
        item.phone[: limits["phone"]],
        item.message,
        item.form_id[: limits["form_id"]],
        item.page_uri,
        item.portal_id,
        item.object_id[: limits["object_id"]],
        item.event_type[: limits["event_type"]],
        item.submitted_at.isoformat() if item.submitted_at else None,
    ]


@functools.cache
def _max_lengths() -> dict[str, int]:
    return {
        name: FormSubmission._meta.get_field(name).max_length or 0
        for name in _ROW_COLUMNS
        if FormSubmission._meta.get_field(name).max_length
    }


#: Columns the statement fills from the CTE rows, not from model defaults.
_FROM_ROWS = {"id", "submission_id", "workflow_id", "object_id", "reason", "details"}


def _column_values(model: type, now: datetime, **values: Any) -> tuple[str, list[Any]]:
    """Every other column of ``model``: the given value, else the field's default (timestamps
    with auto_now or auto_now_add get ``now``), prepared as the ORM would save it."""
    columns, params, timestamps = _fixed_columns(model, tuple(sorted(values.items())))
    params = list(params)
    for index, field in timestamps:
        params[index] = field.get_db_prep_save(now, connection)
    return columns, params


@functools.cache
def _fixed_columns(model: type, values: tuple[tuple[str, Any], ...]) -> tuple[str, list, list]:
    """The part of _column_values that is the same on every request (it sat on the webhook's
    hot path): the column list, the prepared values, and where the timestamps go."""
    given = dict(values)
    columns, params, timestamps = [], [], []
    for field in model._meta.concrete_fields:
        if field.attname in _FROM_ROWS:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            timestamps.append((len(params), field))
            params.append(None)
        else:
            value = given[field.name] if field.name in given else field.get_default()
            params.append(field.get_db_prep_save(value, connection))
    return ", ".join(columns), params, timestamps


def _insert_new_submissions(
    items: list[NormalisedItem], signature_version: str, received_at: datetime
) -> dict[str, int]:
    """INSERT … ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key, for the items
    whose key was not purged (PurgedDeliveryKey: those count as stored).

    bulk_create(ignore_conflicts=True) cannot tell which rows it inserted, so this is raw
    SQL; PostgreSQL and SQLite >= 3.35 both accept it. Returns dedupe_key -> id of new rows.
    """
    inserted: dict[str, int] = {}
    purged = purged_dedupe_keys([item.dedupe_key for item in items])
    items = [item for item in items if item.dedupe_key not in purged]  # they count as stored
    with connection.cursor() as cursor:
        for chunk in _chunks(items):
            cursor.execute(
                _submission_insert(len(chunk)),
                _submission_values(chunk, signature_version, received_at),
            )
            inserted.update((key, pk) for pk, key in cursor.fetchall())
    return inserted


def _submission_fields() -> list:
    return [FormSubmission._meta.get_field(name) for name in _COLUMNS]


def _chunks(items: list[NormalisedItem]) -> list[list[NormalisedItem]]:
    """The items in batches small enough for one statement's parameters."""
    if not items:
        return []
    size = connection.ops.bulk_batch_size(_submission_fields(), items)
    return [items[start : start + size] for start in range(0, len(items), size)]


def _submission_insert(rows: int) -> str:
    """INSERT of ``rows`` submissions that skips stored dedupe keys, returning the new rows'
    id and dedupe key (_insert_new_submissions, the portable path)."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in _submission_fields())
    row = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    # Identifiers come from the model; every value is a bound parameter.
    return (
        f"INSERT INTO {quote(FormSubmission._meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES {', '.join([row] * rows)} "
        f"ON CONFLICT ({quote('dedupe_key')}) DO NOTHING RETURNING id, dedupe_key"
    )


def _submission_values(
    chunk: list[NormalisedItem], signature_version: str, received_at: datetime
) -> list[Any]:
    """The parameters of _submission_insert, prepared as the ORM would save them."""
    fields = _submission_fields()
    return [
        field.get_db_prep_save(value, connection)
        for item in chunk
        for field, value in zip(fields, _row(item, signature_version, received_at), strict=True)
    ]


def _row(item: NormalisedItem, signature_version: str, received_at: datetime) -> list[Any]:
    email, email_error = email_and_error(item)
    values = {
        "dedupe_key": item.dedupe_key,
        "shape": item.shape,
        "signature_version": signature_version,
        "raw_payload": _storable_json(item.raw),
        "email": email,
        "email_error": email_error,
        "first_name": item.first_name,
        "last_name": item.last_name,
        "company": item.company,
        "phone": item.phone,
        "message": item.message,
        "form_id": item.form_id,
        "page_uri": item.page_uri,
        "portal_id": item.portal_id,
        "object_id": item.object_id,
        "event_type": item.event_type,
        "submitted_at": item.submitted_at,
        "received_at": received_at,
    }
    return [_fit(name, values[name]) for name in _COLUMNS]


def _fit(name: str, value: Any) -> Any:
    # A signed delivery is never refused for an overlong field: keep what fits the column.
    max_length = FormSubmission._meta.get_field(name).max_length
    if max_length and isinstance(value, str):
        return value[:max_length]
    return value


def _storable_json(value: Any) -> Any:
    """The payload as PostgreSQL jsonb accepts it.

    jsonb refuses NUL characters and non-finite numbers, and no database driver can encode a
    lone surrogate; valid JSON may contain all three. They are replaced (characters) or
    turned into strings (numbers) so that the lead is kept; the dedupe key was computed
    from the body as received.
    """
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_storable_json(v) for v in value]
    if isinstance(value, dict):
        return {_storable_json(k): _storable_json(v) for k, v in value.items()}
    return value


def _received_event(
    submission_id: int, item: NormalisedItem, workflow_id: int, signature_version: str
) -> AuditEvent:
    return AuditEvent(
        actor="hubspot",
        action="submission.received",
        object_type="submission",
        object_id=str(submission_id),
        workflow_id=workflow_id,
        to_status=Status.PENDING,
        reason=email_and_error(item)[1],  # as stored, like the one-statement path
        details={"shape": item.shape, "signature_version": signature_version},
    )
