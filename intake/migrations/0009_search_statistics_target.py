"""A finer histogram for the search's four expressions (issue #16, after migration 0008).

PostgreSQL estimates LIKE '%term%' from the share of histogram bounds the pattern matches.
At the default statistics target (100 bounds) one matching bound is 1 % of the table: at 1M
submissions, a term with 550 matches could be estimated at 10,000 or at 1, depending on
ANALYZE's sample. The dashboard's search then walked the newest workflows to find its 26
(50,000 rows, 145 ms) instead of reading the 550 from the trigram indexes and sorting them
(55 ms). 1,000 bounds make one bound 0.1 %. ANALYZE reads more rows for it: 5.5 s instead of
0.55 s for form_submissions at 1M (docs/performance.md, sixth pass).
"""

from django.db import migrations

#: Migration 0008's statistics objects, one per searched column.
NAMES = [
    f"form_submissions_{c}_upper_stats" for c in ("email", "first_name", "last_name", "company")
]
TARGET = 1000


def _set(schema_editor, target: int) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in NAMES:
        schema_editor.execute(f"ALTER STATISTICS {name} SET STATISTICS {target}")
    schema_editor.execute("ANALYZE form_submissions")


def finer(apps, schema_editor) -> None:
    _set(schema_editor, TARGET)


def default(apps, schema_editor) -> None:
    _set(schema_editor, -1)


class Migration(migrations.Migration):
    dependencies = [("intake", "0008_search_expression_statistics")]

    operations = [migrations.RunPython(finer, default)]
