"""The workflow state machine: one table of allowed moves, applied by one function.

Every move is a conditional UPDATE (`WHERE id = … AND status = <from>`) plus an audit row in
the same transaction (on PostgreSQL, the same statement). Two callers racing the same move
cannot both win: the loser's UPDATE matches no row, and it is told so
(``TransitionResult.won`` is False) with the status that beat it, instead of silently
overwriting it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from config.db import bound_cursor
from workflows import audit
from workflows.models import TERMINAL_STATUSES, AuditEvent, Status, Workflow

S = Status

#: (from, to) -> what the move means. The README's mermaid diagram is checked against this.
TRANSITIONS: Mapping[tuple[Status, Status], str] = {
    (S.PENDING, S.RUNNING): "a worker claims the workflow",
    (S.RUNNING, S.AWAITING_APPROVAL): "draft ready; the gate holds it for a human",
    (S.RUNNING, S.SENDING): "auto-send: the gate allows sending without approval",
    (S.RUNNING, S.COMPLETED): "shadow replay finished, or nothing to send",
    (S.RUNNING, S.FAILED): "a permanent error, or retries exhausted",
    (S.AWAITING_APPROVAL, S.APPROVED): "an operator approves the draft",
    (S.AWAITING_APPROVAL, S.REJECTED): "an operator rejects the draft",
    (S.AWAITING_APPROVAL, S.COMPLETED): "its contact, attached after drafting, is another lead's",
    (S.APPROVED, S.SENDING): "the send is claimed (send mode, gate allows)",
    (S.APPROVED, S.COMPLETED): "draft-only or blocked: the rep sends by hand",
    (S.SENDING, S.SENT): "the provider accepted the message",
    (S.SENDING, S.COMPLETED): "the gate re-check right before sending said no; rep sends by hand",
    (S.SENDING, S.FAILED): "the provider refused the message, retries exhausted",
    (S.SENDING, S.SEND_UNKNOWN): "the outcome is unknown (timeout or crash after the claim)",
    (S.SENDING, S.AWAITING_APPROVAL): "recipient cooldown: emailed recently; a human decides",
    (S.SEND_UNKNOWN, S.SENT): "an operator confirms the message went out",
    (S.SEND_UNKNOWN, S.COMPLETED): "an operator confirms it did not; the rep follows up by hand",
}


class TransitionNotAllowed(ValueError):
    """The requested move is not in TRANSITIONS: a programming error, never a race."""


@dataclass(frozen=True)
class TransitionResult:
    workflow_id: int
    from_status: str
    to_status: str
    won: bool
    #: The status the row actually has now: ``to_status`` when won, the winner's otherwise.
    current_status: str | None
    #: With ``fetch=True`` and won: the workflow as the move left it, its submission loaded.
    workflow: Workflow | None = None

    def __bool__(self) -> bool:
        return self.won


def check_allowed(from_status: str, to_status: str) -> None:
    if (from_status, to_status) not in TRANSITIONS:
        raise TransitionNotAllowed(
            f"workflow cannot move from {from_status!r} to {to_status!r}; "
            f"allowed from {from_status!r}: {sorted(allowed_from(from_status)) or 'nothing'}"
        )


def allowed_from(from_status: str) -> set[str]:
    return {str(to) for (frm, to) in TRANSITIONS if frm == from_status}


def transition(
    workflow_id: int,
    *,
    from_status: str,
    to_status: str,
    user: AbstractBaseUser | None = None,
    actor: str | None = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
    also: Sequence[tuple[QuerySet, Mapping[str, Any]]] = (),
    events: Sequence[AuditEvent] = (),
    fetch: bool = False,
) -> TransitionResult:
    """Move one workflow ``from_status -> to_status`` if, and only if, it is still there.

    ``fields`` are extra columns set by the same UPDATE (e.g. ``last_error``). ``also``:
    (queryset, values) updates of other rows, and ``events``: more audit rows, written with
    the move only if it wins (the hand-off's gate decision on its draft). ``fetch``: return
    the moved workflow with its submission (a claim's), read by the same statement. Raises
    TransitionNotAllowed for a move not in the table. Returns a result whose ``won`` is
    False when another caller moved the row first; nothing is written in that case.
    """
    check_allowed(from_status, to_status)
    now = timezone.now()
    values: dict[str, Any] = {"status": to_status, "updated_at": now, **(fields or {})}
    if to_status == Status.RUNNING:
        values.setdefault("started_at", now)
    if to_status in TERMINAL_STATUSES:
        values.setdefault("completed_at", now)
        values.setdefault("lease_expires_at", None)
    event = audit.event_for(
        action="workflow.transition",
        object_type="workflow",
        object_id=workflow_id,
        workflow_id=workflow_id,
        user=user,
        actor=actor,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        details=details,
    )
    moved = None
    if connection.vendor == "postgresql":
        update = _guarded_update(workflow_id, from_status, values)
        won, moved = _update_and_audit(update, [event, *events], also, fetch=fetch)
    else:
        guarded = Workflow.objects.filter(pk=workflow_id, status=from_status)
        # No savepoint inside a caller's transaction (a merge's): nothing here catches an
        # error, so the caller's transaction fails with it either way.
        with transaction.atomic(savepoint=False):
            won = guarded.update(**values) == 1
            if won:
                for row in (event, *events):
                    row.save(force_insert=True)
                for queryset, changes in also:
                    queryset.update(**changes)
    if won:
        if fetch and moved is None:
            moved = Workflow.objects.select_related("submission").get(pk=workflow_id)
        return TransitionResult(workflow_id, from_status, to_status, True, to_status, moved)
    current = Workflow.objects.filter(pk=workflow_id).values_list("status", flat=True).first()
    return TransitionResult(workflow_id, from_status, to_status, False, current)


def _update_and_audit(
    update: tuple[str, Sequence[Any]],
    events: Sequence[AuditEvent],
    also: Sequence[tuple[QuerySet, Mapping[str, Any]]] = (),
    *,
    fetch: bool = False,
) -> tuple[bool, Workflow | None]:
    """PostgreSQL: the guarded UPDATE and, only if it matched, its audit rows and the ``also``
    updates, in one statement (data-modifying CTEs): atomic on its own, one round trip instead
    of a transaction's several (BEGIN, each write, COMMIT). ``update`` is the move's own
    UPDATE (_guarded_update); the ``also`` ones are the ORM's own SQL; the audit rows' values
    are prepared by their fields as a save would. ``fetch``: the same statement returns the
    updated row and its submission (whether it matched, and the row)."""
    update_sql, params = update
    returning = ", ".join(_columns(Workflow)) if fetch else "1"
    ctes = [f"u AS ({update_sql} RETURNING {returning})"]
    matched = RawSQL("EXISTS (SELECT 1 FROM u)", (), output_field=BooleanField())
    for n, (queryset, changes) in enumerate(also):
        sql, more = _update_sql(queryset.filter(matched), changes)
        ctes.append(f"also{n} AS ({sql})")
        params = (*params, *more)
    inserts = [audit.insert_select_sql(event, source="u") for event in events]
    if not fetch:
        # The first audit row is the statement's own INSERT: its row count says who won.
        (last_sql, last_params), inserts = inserts[0], inserts[1:]
    for n, (sql, more) in enumerate(inserts):
        ctes.append(f"event{n} AS ({sql})")
        params = (*params, *more)
    if fetch:
        link, quote = Workflow.submission.field, connection.ops.quote_name
        submission = link.related_model
        last_sql = (
            f"SELECT u.*, {', '.join(_columns(submission, 's'))} FROM u "  # noqa: S608
            f"JOIN {quote(submission._meta.db_table)} s "
            f"ON s.{quote(submission._meta.pk.column)} = u.{quote(link.column)}"
        )
        last_params = []
    with bound_cursor() as cursor:
        cursor.execute(f"WITH {', '.join(ctes)} {last_sql}", [*params, *last_params])
        if not fetch:
            return cursor.rowcount == 1, None
        row = cursor.fetchone()
    if row is None:
        return False, None
    split = len(Workflow._meta.concrete_fields)
    workflow = _from_row(Workflow, row[:split])
    workflow.submission = _from_row(Workflow.submission.field.related_model, row[split:])
    return True, workflow


def _columns(model, alias: str = "") -> list[str]:
    quote, prefix = connection.ops.quote_name, f"{alias}." if alias else ""
    return [prefix + quote(f.column) for f in model._meta.concrete_fields]


def _from_row(model, values):
    """A model instance from its concrete columns in field order, converted as a query would
    (a JSON column arrives as text and is decoded by its field)."""
    fields = model._meta.concrete_fields
    converted = []
    for field, value in zip(fields, values, strict=True):
        for convert in field.get_db_converters(connection):
            value = convert(value, field, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def _guarded_update(
    workflow_id: int, from_status: str, values: Mapping[str, Any]
) -> tuple[str, Sequence[Any]]:
    """The move's own UPDATE: update_workflow's cached text when every value is plain, the
    ORM's compilation when one is an expression."""
    if any(hasattr(value, "resolve_expression") for value in values.values()):
        return _update_sql(Workflow.objects.filter(pk=workflow_id, status=from_status), values)
    where = {"status": from_status}
    return _update_text(connection.vendor, tuple(values), ("status",)), _update_params(
        values, workflow_id, where
    )


def _update_sql(queryset: QuerySet, values: Mapping[str, Any]) -> tuple[str, Sequence[Any]]:
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    return query.get_compiler(connection=connection).as_sql()


def update_workflow(pk: int, values: Mapping[str, Any], **where: Any) -> int:
    """``Workflow.objects.filter(pk=pk, **where).update(**values)`` for plain equality guards,
    without the ORM's compilation on every call: the statement's text is built once per set of
    column names (the pipeline writes each step's start and finish through this, four to five
    times a workflow). The values are prepared by their fields, as the ORM's update does.
    Returns the number of rows updated (0 or 1). A guard is ``column = value``, so never None
    (the ORM would have written IS NULL)."""
    if any(value is None for value in where.values()):
        raise ValueError("update_workflow's guards are equalities; None matches nothing")
    sql = _update_text(connection.vendor, tuple(values), tuple(where))
    with bound_cursor() as cursor:
        cursor.execute(sql, _update_params(values, pk, where))
        return cursor.rowcount


def _update_params(values: Mapping[str, Any], pk: int, where: Mapping[str, Any]) -> list[Any]:
    return [
        _field(name).get_db_prep_save(value, connection)
        for name, value in (*values.items(), ("pk", pk), *where.items())
    ]


@functools.cache
def _update_text(vendor: str, columns: tuple[str, ...], guards: tuple[str, ...]) -> str:
    # ``vendor`` only keys the cache: the quoting below is that backend's.
    quote = connection.ops.quote_name
    sets = ", ".join(f"{quote(_field(name).column)} = %s" for name in columns)
    conditions = " AND ".join(f"{quote(_field(name).column)} = %s" for name in ("pk", *guards))
    return f"UPDATE {quote(Workflow._meta.db_table)} SET {sets} WHERE {conditions}"  # noqa: S608


def _field(name: str):
    meta = Workflow._meta
    return meta.pk if name == "pk" else meta.get_field(name)


def last_transition_to(workflow_id: int, status: str) -> AuditEvent | None:
    """Who moved the workflow into ``status``: what a race loser is told."""
    return (
        AuditEvent.objects.filter(
            workflow_id=workflow_id, action="workflow.transition", to_status=status
        )
        .order_by("-created_at", "-id")
        .first()
    )


def mermaid_diagram(transitions: Iterable[tuple[str, str]] | None = None) -> str:
    """The state diagram as mermaid source, generated from TRANSITIONS (README embeds it)."""
    pairs = transitions if transitions is not None else TRANSITIONS.keys()
    lines = ["stateDiagram-v2", "    [*] --> pending"]
    lines += [f"    {frm} --> {to}" for frm, to in pairs]
    lines += [f"    {s} --> [*]" for s in Status.values if s in TERMINAL_STATUSES]
    return "\n".join(lines)
