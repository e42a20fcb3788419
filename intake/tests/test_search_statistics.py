"""The planner knows how many submissions a search term matches (intake migration 0008)."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.utils import timezone

from intake.models import FormSubmission

pytestmark = pytest.mark.django_db


def estimated_rows(sql: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        (plan,) = cursor.fetchone()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return plan[0]["Plan"]["Plan Rows"]


def store_and_analyze(count: int, field: str, value) -> None:
    """``count`` submissions whose ``field`` is ``value(n)``, then fresh statistics."""
    now = timezone.now()
    FormSubmission.objects.bulk_create(
        FormSubmission(
            dedupe_key=f"stats-{n}",
            shape="forms",
            signature_version="v3",
            raw_payload={},
            received_at=now,
            **{field: value(n)},
        )
        for n in range(count)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE form_submissions")


def test_a_frequent_search_term_is_estimated_near_its_real_count():
    """Without statistics on UPPER(email), any LIKE '%term%' was guessed at a fraction of a
    percent of the table: a term in a third of 3,000 rows came out at a few dozen, and the
    REST list sorted 166,000 matches at 1M workflows instead of walking to its 51 newest."""
    if connection.vendor != "postgresql":
        pytest.skip("extended statistics are PostgreSQL's")
    store_and_analyze(
        3000, "email", lambda n: f"lead{n}@{'globex' if n % 3 == 0 else 'initech'}.example.com"
    )

    rows = estimated_rows(
        "SELECT id FROM form_submissions WHERE UPPER(email::text) LIKE '%GLOBEX%'"
    )
    assert 500 <= rows <= 2000, rows  # 1,000 match


def test_a_rare_term_on_a_histogram_bound_is_not_estimated_at_a_percent_of_the_table():
    """A LIKE '%term%' estimate is the share of histogram bounds the pattern matches. With the
    default 100 bounds, a rare term that matches one of them came out at 1 % of the table: at
    1M submissions a 550-match search was estimated at 10,000, and the dashboard walked 50,000
    workflows for its page (145 ms) instead of reading the 550 (migration 0009)."""
    if connection.vendor != "postgresql":
        pytest.skip("extended statistics are PostgreSQL's")
    # 2,000 companies, 10 submissions each; below ANALYZE's sample size, so every row is read.
    store_and_analyze(20_000, "company", lambda n: f"Company {n % 2000}")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT histogram_bounds::text::text[] FROM pg_stats_ext_exprs "
            "WHERE statistics_name = 'form_submissions_company_upper_stats'"
        )
        (bounds,) = cursor.fetchone()
    # An inner bound (the first and last are not counted) that no other company contains.
    term = next(b for b in bounds[1:-1] if len(b.split()[-1]) == 4)
    assert FormSubmission.objects.filter(company__iexact=term).count() == 10

    rows = estimated_rows(
        f"SELECT id FROM form_submissions WHERE UPPER(company::text) LIKE '%{term}%'"  # noqa: S608
    )
    assert rows <= 40, rows  # 0.2 % of 20,000; one bound in 100 would be 200
