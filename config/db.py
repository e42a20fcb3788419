"""Database helpers shared by the hot paths (the webhook's statement, the pipeline's writes)."""

from __future__ import annotations

from django.db import connection


def bound_cursor():
    """A cursor that, on PostgreSQL, binds parameters on the server, wrapped like every Django
    cursor (query logging, execute wrappers).

    Django's default psycopg cursor quotes every value into the SQL text on the client: a JSON
    value is escaped and quoted in Python, and no two executions share a text, so none is ever
    prepared. Bound on the server, a statement whose text is the same each time (the webhook's,
    the pipeline's cached writes) is prepared by psycopg after DB_PREPARE_THRESHOLD runs on a
    connection and planned once. Behind PgBouncer (DATABASE_POOLER) nothing is prepared: the
    parameters still go unquoted in an unnamed statement, which transaction pooling allows.
    The ORM's own queries (the dashboard's searches among them) keep the default cursor, so
    their plans are always made for their values. Elsewhere: the default cursor."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    # As connection.cursor() does: a kept connection that died while idle (a PostgreSQL
    # restart) is replaced here, where a task's or a request's first statement finds it.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(ServerBindingCursor(connection.connection))
