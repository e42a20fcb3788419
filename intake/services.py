"""Store verified webhook items: submissions, their first workflows and audit rows, atomically.

The pending workflow rows double as the outbox: they are enqueued after commit, and whatever
the broker did not take (an outage) stays pending for the sweeper.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from intake.models import FormSubmission
from intake.payloads import NormalisedItem
from workflows.models import AuditEvent, Status, Trigger, Workflow
from workflows.services import enqueue_on_commit

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
    accepted_ids: list[int]
    duplicates: int
    workflow_ids: list[int]


def submissions_ingest(
    *,
    items: Sequence[NormalisedItem],
    signature_version: str,
    received_at: datetime,
    trigger: str = Trigger.WEBHOOK,
) -> IngestResult:
    """Store each new item with one pending workflow and a "submission.received" audit row.

    ``signature_version`` is the one that verified the request, or ``SignatureVersion.POLL``
    ("poll") for items fetched from HubSpot by the Forms poll; ``trigger`` is the new
    workflows' (``Trigger.RECONCILE`` for the poll).

    All or nothing: on PostgreSQL one statement (see _store_in_one_statement), elsewhere one
    transaction of three; a fixed number of queries whatever the batch size.
    Idempotent per item: an item whose dedupe key is already stored (a HubSpot redelivery,
    or a repeat inside the batch) is counted as a duplicate and creates nothing. After commit
    the new workflows are enqueued (``workflows.services.enqueue_on_commit``); a broker
    outage leaves them pending for the sweeper. Database errors propagate.
    """
    unique: dict[str, NormalisedItem] = {}
    for item in items:
        unique.setdefault(item.dedupe_key, item)
    rows = list(unique.values())
    if connection.vendor == "postgresql":
        stored = _store_in_one_statement(rows, signature_version, received_at, trigger)
    else:
        stored = _store_with_the_orm(rows, signature_version, received_at, trigger)
    new = [stored[key] for key in unique if key in stored]
    accepted_ids = [submission_id for submission_id, _ in new]
    workflow_ids = [workflow_id for _, workflow_id in new]
    enqueue_on_commit(workflow_ids)
    return IngestResult(accepted_ids, len(items) - len(accepted_ids), workflow_ids)


Stored = dict[str, tuple[int, int]]  # dedupe key -> (submission id, workflow id), new rows only


def _store_with_the_orm(
    rows: list[NormalisedItem],
    signature_version: str,
    received_at: datetime,
    trigger: str = Trigger.WEBHOOK,
) -> Stored:
    """Portable: three statements in one transaction (SQLite, ``make run``'s default)."""
    with transaction.atomic():
        inserted = _insert_new_submissions(rows, signature_version, received_at)
        new_items = [(inserted[i.dedupe_key], i) for i in rows if i.dedupe_key in inserted]
        workflows = Workflow.objects.bulk_create(
            Workflow(submission_id=submission_id, status=Status.PENDING, trigger=trigger)
            for submission_id, _ in new_items
        )
        AuditEvent.objects.bulk_create(
            _received_event(submission_id, item, workflow.pk, signature_version)
            for (submission_id, item), workflow in zip(new_items, workflows, strict=True)
        )
    return {
        item.dedupe_key: (submission_id, workflow.pk)
        for (submission_id, item), workflow in zip(new_items, workflows, strict=True)
    }


def _store_in_one_statement(
    rows: list[NormalisedItem],
    signature_version: str,
    received_at: datetime,
    trigger: str = Trigger.WEBHOOK,
) -> Stored:
    """PostgreSQL: submissions, workflows and audit rows in one statement of chained
    data-modifying CTEs, so a delivery costs one round trip and one commit, like the plain
    INSERT it is measured against (bench/ingest.py). The rows are the same as the portable
    path's (a test compares them). A single statement is atomic; a batch too big for one
    statement's parameters is split, and then the statements share a transaction."""
    chunks = _chunks(rows)
    now = timezone.now()
    stored: Stored = {}
    with transaction.atomic() if len(chunks) > 1 else nullcontext(), connection.cursor() as cursor:
        for chunk in chunks:
            sql, params = _one_statement(chunk, signature_version, received_at, now, trigger)
            cursor.execute(sql, params)
            stored.update((key, (sub, wf)) for key, sub, wf in cursor.fetchall())
    return stored


def _one_statement(
    chunk: list[NormalisedItem],
    signature_version: str,
    received_at: datetime,
    now: datetime,
    trigger: str,
) -> tuple[str, list[Any]]:
    quote = connection.ops.quote_name
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
    placeholders = ", ".join(["%s"] * len(workflow_params))
    audit_placeholders = ", ".join(["%s"] * len(audit_params))
    submissions = _submission_insert(
        len(chunk), "id, dedupe_key, shape, signature_version, email_error"
    )
    # Identifiers come from the models; every value is a bound parameter.
    sql = f"""
        WITH s AS (
            {submissions}
        ), w AS (
            INSERT INTO {quote(Workflow._meta.db_table)} (submission_id, {workflow_cols})
            SELECT s.id, {placeholders} FROM s ORDER BY s.id
            RETURNING id, submission_id
        ), a AS (
            INSERT INTO {quote(AuditEvent._meta.db_table)}
                (workflow_id, object_id, reason, details, {audit_cols})
            SELECT w.id, s.id::text, s.email_error,
                jsonb_build_object('shape', s.shape, 'signature_version', s.signature_version),
                {audit_placeholders}
            FROM w JOIN s ON s.id = w.submission_id
        )
        SELECT s.dedupe_key, s.id, w.id FROM s JOIN w ON w.submission_id = s.id
    """  # noqa: S608
    values = _submission_values(chunk, signature_version, received_at)
    return sql, [*values, *workflow_params, *audit_params]


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
    """INSERT … ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key.

    bulk_create(ignore_conflicts=True) cannot tell which rows it inserted, so this is raw
    SQL; PostgreSQL and SQLite >= 3.35 both accept it. Returns dedupe_key -> id of new rows.
    """
    inserted: dict[str, int] = {}
    with connection.cursor() as cursor:
        for chunk in _chunks(items):
            cursor.execute(
                _submission_insert(len(chunk), "id, dedupe_key"),
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


def _submission_insert(rows: int, returning: str) -> str:
    """INSERT of ``rows`` submissions that skips stored dedupe keys; both paths use it."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in _submission_fields())
    row = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    # Identifiers come from the model; every value is a bound parameter.
    return (
        f"INSERT INTO {quote(FormSubmission._meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES {', '.join([row] * rows)} "
        f"ON CONFLICT ({quote('dedupe_key')}) DO NOTHING RETURNING {returning}"
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
    email, email_error = _email_and_error(item)
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


def _email_and_error(item: NormalisedItem) -> tuple[str, str]:
    """The email to store and why it is missing, if it is: an overlong one is not stored."""
    if len(item.email) > FormSubmission._meta.get_field("email").max_length:
        return "", f"email longer than 254 characters ({item.email[:40]}...)"
    return item.email, item.email_error


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
        reason=_email_and_error(item)[1],  # as stored, like the one-statement path
        details={"shape": item.shape, "signature_version": signature_version},
    )
