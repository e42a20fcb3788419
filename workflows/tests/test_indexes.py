"""The write-side indexes of issue #16: partial where a column is almost always empty, and
still usable by every lookup that names a value, prepared (generic) plans included."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans"),
]

LOOKUPS = [
    ("workflows", "replay_of_id", "workflow_replay_of_idx"),
    ("workflows", "superseded_by_id", "workflow_superseded_by_idx"),
    ("audit_events", "actor_user_id", "audit_actor_user_idx"),
    ("leads", "duplicate_of_id", "lead_duplicate_of_idx"),
]


@pytest.mark.parametrize(("table", "column", "index"), LOOKUPS)
def test_a_lookup_by_value_uses_the_partial_index_in_a_generic_plan(table, column, index):
    # A prepared statement's generic plan does not know the value; "= $1" still implies
    # IS NOT NULL, so the partial index serves it (what DB_PREPARE_THRESHOLD relies on).
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        # table and column are this module's constants, not input
        cursor.execute(f"PREPARE lookup(bigint) AS SELECT 1 FROM {table} WHERE {column} = $1")  # noqa: S608
        cursor.execute("EXPLAIN EXECUTE lookup(1)")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("DEALLOCATE lookup")
    assert index in plan, plan


def test_no_index_entry_is_written_for_what_no_query_reads():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename IN "
            "('form_submissions', 'lead_keys', 'workflows', 'audit_events', 'leads') "
            "AND (indexdef LIKE %s OR (indexdef NOT LIKE %s AND indexdef ~ %s))",
            [
                "%varchar_pattern_ops%",
                "%WHERE%",
                r"\((replay_of_id|superseded_by_id|actor_user_id|duplicate_of_id)\)",
            ],
        )
        assert cursor.fetchall() == []
