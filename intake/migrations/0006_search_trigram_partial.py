"""The search's trigram indexes leave out empty values (issue #16).

Most non-form deliveries (contact events: an id, no email, name or company) have all four
search columns empty, and every insert still added an entry to each of the four GIN indexes:
on a 100-event batch they were more than half of the statement's time (docs/performance.md).
A search term is never empty, so an empty column never matches it: the dashboard's search adds
``col <> ''`` to each term (dashboard/selectors.py), which lets the planner use these partial
indexes, and an empty column costs no index entry.

Built CONCURRENTLY (not atomic), like 0002; nothing on SQLite.
"""

from django.db import migrations

COLUMNS = ("email", "first_name", "last_name", "company")


def _index(column: str) -> str:
    return f"form_submissions_{column}_trgm"


def partial(apps, schema_editor) -> None:
    for column in COLUMNS:
        _rebuild_one(schema_editor, column, f" WHERE \"{column}\" <> ''")


def whole(apps, schema_editor) -> None:
    for column in COLUMNS:
        _rebuild_one(schema_editor, column, "")


def _rebuild_one(schema_editor, column: str, where: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    name = _index(column)
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}_new")
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY {name}_new "
        f'ON form_submissions USING gin (UPPER("{column}") gin_trgm_ops){where}'
    )
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    schema_editor.execute(f"ALTER INDEX {name}_new RENAME TO {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("intake", "0005_submission_workflow_at")]

    operations = [migrations.RunPython(partial, whole, elidable=False)]
