"""Audit rows: every transition, edit, decision, send and change of send mode writes one."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Model
from django.db.models.sql import InsertQuery

from config.db import bound_cursor
from workflows.models import AuditEvent


def record(**fields: Any) -> AuditEvent:
    """Write one audit row (``fields``: event_for's). Call it inside the transaction of the
    change it records."""
    event = event_for(**fields)
    event.save(force_insert=True)
    return event


def event_for(
    *,
    action: str,
    object_type: str,
    object_id: str | int = "",
    workflow_id: int | None = None,
    user: AbstractBaseUser | None = None,
    actor: str | None = None,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """The audit row ``record`` writes, unsaved (a transition writes it in its own statement)."""
    authenticated = user is not None and user.is_authenticated
    return AuditEvent(
        actor=actor or (user.get_username() if authenticated else "system"),
        actor_user=user if authenticated else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        workflow_id=workflow_id,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        details=details or {},
    )


def insert_select_sql(
    event: AuditEvent, *, source: str, computed: Mapping[str, str] | None = None
) -> tuple[str, list[Any]]:
    """PostgreSQL: ``INSERT INTO audit_events (…) SELECT … FROM <source>``, the unsaved
    ``event``'s row once per row of ``source`` (a CTE of the caller's statement: none when its
    write matched nothing). ``computed``: column -> SQL taking a value from ``source``. The
    values are prepared by their fields as a save would, and bound as parameters."""
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    computed = computed or {}
    columns, params = [], []
    for field in fields:
        if field.column in computed:
            columns.append(computed[field.column])
        else:
            columns.append("%s")
            params.append(field.get_db_prep_save(field.pre_save(event, add=True), connection))
    quote = connection.ops.quote_name
    # Identifiers come from the models (and the caller's CTE name); every value is bound.
    sql = (
        f"INSERT INTO {quote(AuditEvent._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"SELECT {', '.join(columns)} FROM {source}"
    )
    return sql, params


def insert_with_audit(obj: Model, event: AuditEvent) -> None:
    """Insert the unsaved ``obj`` and ``event``, its audit row, whose object_id becomes the new
    row's pk: atomically, in one statement on PostgreSQL (one round trip, not BEGIN, two
    INSERTs and COMMIT), in a transaction elsewhere. Raises IntegrityError, having written
    nothing and left a caller's transaction usable, when ``obj`` breaks a constraint."""
    if connection.vendor != "postgresql":
        with transaction.atomic():
            obj.save(force_insert=True)
            event.object_id = str(obj.pk)
            event.save(force_insert=True)
        return
    meta = obj._meta
    insert_sql, fields = _insert_text(type(obj))
    # As the ORM's insert prepares them (pre_save fills auto_now_add, then the field adapts).
    values = [f.pre_save(obj, add=True) for f in fields]
    if any(hasattr(value, "resolve_expression") for value in values):
        insert_sql, insert_params = _compiled_insert(obj, fields)
    else:
        insert_params = [
            f.get_db_prep_save(v, connection) for f, v in zip(fields, values, strict=True)
        ]
    pk = connection.ops.quote_name(meta.pk.column)
    audit_sql, audit_params = insert_select_sql(
        event, source="ins", computed={"object_id": f"ins.{pk}::text"}
    )
    # Inside a caller's transaction a savepoint keeps it usable after a constraint error.
    guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with guard, bound_cursor() as cursor:
        cursor.execute(
            f"WITH ins AS ({insert_sql}) {audit_sql} RETURNING object_id",
            [*insert_params, *audit_params],
        )
        (object_id,) = cursor.fetchone()
    obj.pk = meta.pk.to_python(object_id)
    obj._state.adding, obj._state.db = False, connection.alias
    event.object_id = object_id


@functools.cache
def _insert_text(model: type[Model]) -> tuple[str, tuple]:
    """The one-row ``INSERT … RETURNING pk`` of ``model``, built once per model (the ORM
    compiles it on every insert), and its fields in the order of its placeholders."""
    meta = model._meta
    fields = tuple(
        f
        for f in meta.local_concrete_fields
        if f is not meta.auto_field and not getattr(f, "generated", False)
    )
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(meta.pk.column)}"
    )
    return sql, fields


def _compiled_insert(obj: Model, fields) -> tuple[str, list[Any]]:
    """The ORM's own compilation: for a value that is an expression."""
    query = InsertQuery(type(obj))
    query.insert_values(list(fields), [obj])
    compiler = query.get_compiler(connection=connection)
    compiler.returning_fields = [obj._meta.pk]
    [(sql, params)] = compiler.as_sql()
    return sql, list(params)
