"""Trigram indexes for the dashboard search (PostgreSQL only).

The dashboard's search is ``icontains`` on four lead columns, which Django renders as
``UPPER(col::text) LIKE UPPER('%term%')``. A B-tree cannot serve a leading wildcard, so on a
million rows every search was a sequential scan. A GIN index over ``UPPER(col) gin_trgm_ops``
matches that exact expression, and the planner combines the four with a BitmapOr.

The indexes are built CONCURRENTLY (no write lock on a live table), so this migration is not
atomic. On SQLite (``make run``'s embedded default) it does nothing: the tables there are small.
"""

from django.db import migrations

COLUMNS = ("email", "first_name", "last_name", "company")


def _index(column: str) -> str:
    return f"form_submissions_{column}_trgm"


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_index(column)} "
            f'ON form_submissions USING gin (UPPER("{column}") gin_trgm_ops)'
        )


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_index(column)}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("intake", "0001_initial")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
