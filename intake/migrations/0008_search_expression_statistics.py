"""Statistics on the search's four expressions, UPPER(column) (issue #16).

The trigram indexes are partial, and PostgreSQL keeps no statistics for a partial index's
expression, so it guessed a few hundred matches for any term: "globex" has 166,000 of 1M.
With LIMIT 51 (the REST list's page of 50) it then read every match and sorted them (330 ms,
780 ms without parallel workers) instead of walking the newest workflows until 51 matched
(15 ms). The dashboard's LIMIT 26 happened to tip the other way. Extended statistics on the
expressions (PostgreSQL 14+) give the planner real estimates; ANALYZE fills them now, and
autovacuum keeps them fresh. Nothing on SQLite.
"""

from django.db import migrations

COLUMNS = ("email", "first_name", "last_name", "company")


def _name(column: str) -> str:
    return f"form_submissions_{column}_upper_stats"


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE STATISTICS IF NOT EXISTS {_name(column)} "
            f'ON (UPPER("{column}"::text)) FROM form_submissions'
        )
    schema_editor.execute("ANALYZE form_submissions")


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP STATISTICS IF EXISTS {_name(column)}")


class Migration(migrations.Migration):
    dependencies = [("intake", "0007_partial_fk_indexes")]

    operations = [migrations.RunPython(create, drop)]
