"""Store verified webhook items: submissions, their first workflows and audit rows, atomically.

The pending workflow rows double as the outbox: they are enqueued after commit, and whatever
the broker did not take (an outage) stays pending for the sweeper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction

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
    *, items: Sequence[NormalisedItem], signature_version: str, received_at: datetime
) -> IngestResult:
    """Store each new item with one pending workflow and a "submission.received" audit row.

    All or nothing: one transaction, a fixed number of queries whatever the batch size.
    Idempotent per item: an item whose dedupe key is already stored (a HubSpot redelivery,
    or a repeat inside the batch) is counted as a duplicate and creates nothing. After commit
    the new workflows are enqueued (``workflows.services.enqueue_on_commit``); a broker
    outage leaves them pending for the sweeper. Database errors propagate.
    """
    unique: dict[str, NormalisedItem] = {}
    for item in items:
        unique.setdefault(item.dedupe_key, item)
    with transaction.atomic():
        inserted = _insert_new_submissions(list(unique.values()), signature_version, received_at)
        new_items = [(inserted[key], item) for key, item in unique.items() if key in inserted]
        workflows = Workflow.objects.bulk_create(
            Workflow(submission_id=submission_id, status=Status.PENDING, trigger=Trigger.WEBHOOK)
            for submission_id, _ in new_items
        )
        AuditEvent.objects.bulk_create(
            _received_event(submission_id, item, workflow.pk, signature_version)
            for (submission_id, item), workflow in zip(new_items, workflows, strict=True)
        )
        workflow_ids = [workflow.pk for workflow in workflows]
        enqueue_on_commit(workflow_ids)
    accepted_ids = [submission_id for submission_id, _ in new_items]
    return IngestResult(accepted_ids, len(items) - len(accepted_ids), workflow_ids)


def _insert_new_submissions(
    items: list[NormalisedItem], signature_version: str, received_at: datetime
) -> dict[str, int]:
    """INSERT … ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key.

    bulk_create(ignore_conflicts=True) cannot tell which rows it inserted, so this is raw
    SQL; PostgreSQL and SQLite >= 3.35 both accept it. Returns dedupe_key -> id of new rows.
    """
    if not items:
        return {}
    opts = FormSubmission._meta
    fields = [opts.get_field(name) for name in _COLUMNS]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    row_placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
    inserted: dict[str, int] = {}
    with connection.cursor() as cursor:
        size = connection.ops.bulk_batch_size(fields, items)
        for chunk in (items[start : start + size] for start in range(0, len(items), size)):
            # Identifiers come from the model; every value is a bound parameter.
            sql = (
                f"INSERT INTO {quote(opts.db_table)} ({columns}) "  # noqa: S608
                f"VALUES {', '.join([row_placeholder] * len(chunk))} "
                f"ON CONFLICT ({quote('dedupe_key')}) DO NOTHING "
                f"RETURNING {quote(opts.pk.column)}, {quote('dedupe_key')}"
            )
            params = [
                field.get_db_prep_save(value, connection)
                for item in chunk
                for field, value in zip(
                    fields, _row(item, signature_version, received_at), strict=True
                )
            ]
            cursor.execute(sql, params)
            inserted.update((key, pk) for pk, key in cursor.fetchall())
    return inserted


def _row(item: NormalisedItem, signature_version: str, received_at: datetime) -> list[Any]:
    email, email_error = item.email, item.email_error
    if len(email) > FormSubmission._meta.get_field("email").max_length:
        email, email_error = "", f"email longer than 254 characters ({email[:40]}...)"
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
        reason=item.email_error,
        details={"shape": item.shape, "signature_version": signature_version},
    )
