"""The home page chart and the speed medians."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from dashboard import charts, selectors
from workflows.models import AuditEvent, Status, Workflow
from workflows.transitions import TRANSITIONS

pytestmark = pytest.mark.django_db


def _transition(workflow, to_status, at, from_status="running"):
    event = AuditEvent.objects.create(
        actor="system",
        action="workflow.transition",
        object_type="workflow",
        object_id=str(workflow.pk),
        workflow=workflow,
        from_status=from_status,
        to_status=to_status,
    )
    AuditEvent.objects.filter(pk=event.pk).update(created_at=at)


def test_submissions_per_day_groups_by_outcome(workflow_factory, django_assert_num_queries):
    workflow_factory(status=Status.SENT)
    workflow_factory(status=Status.FAILED)
    workflow_factory(status=Status.FAILED, age=dt.timedelta(days=2))
    workflow_factory(status=Status.COMPLETED, age=dt.timedelta(days=30))  # outside the window
    with django_assert_num_queries(1):
        series = selectors.submissions_per_day()
    assert len(series) == 7
    today = series[-1]["counts"]
    assert today["done"] == 1 and today["failed"] == 1
    assert sum(sum(p["counts"].values()) for p in series) == 3


def test_replays_are_not_counted_twice(workflow_factory):
    workflow = workflow_factory(status=Status.FAILED)
    Workflow.objects.create(submission=workflow.submission, trigger="replay", status="pending")
    assert sum(sum(p["counts"].values()) for p in selectors.submissions_per_day()) == 1


def test_chart_geometry_stacks_segments(workflow_factory):
    chart = charts.stacked_bars(
        [
            {"day": dt.date(2026, 1, 1), "counts": {"done": 3, "failed": 1}},
            {"day": dt.date(2026, 1, 2), "counts": {}},
        ],
        selectors.OUTCOMES,
    )
    first = chart["bars"][0]
    assert first["total"] == 4 and [s["key"] for s in first["segments"]] == ["done", "failed"]
    done, failed = first["segments"]
    assert failed["y"] + failed["h"] == pytest.approx(done["y"])
    assert chart["bars"][1]["segments"] == []


def test_medians_of_time_to_draft_and_to_approval(workflow_factory):
    now = timezone.now()
    for minutes_to_draft, minutes_to_approve in [(1, 10), (2, 20), (9, 30)]:
        w = workflow_factory(age=dt.timedelta(hours=1))
        drafted = w.created_at + dt.timedelta(minutes=minutes_to_draft)
        _transition(w, "awaiting_approval", drafted)
        _transition(
            w,
            "approved",
            drafted + dt.timedelta(minutes=minutes_to_approve),
            from_status="awaiting_approval",
        )
    # Two slow runs from more than 7 days ago would move both medians if they counted.
    for _ in range(2):
        old = workflow_factory(age=dt.timedelta(days=9))
        _transition(old, "awaiting_approval", old.created_at + dt.timedelta(hours=5))
        _transition(
            old,
            "approved",
            old.created_at + dt.timedelta(hours=9),
            from_status="awaiting_approval",
        )
    assert old.created_at < now - dt.timedelta(days=7)
    assert selectors.median_time_to_draft() == dt.timedelta(minutes=2)
    assert selectors.median_time_to_approval() == dt.timedelta(minutes=20)


def test_every_approval_is_a_move_from_awaiting_approval():
    # median_time_to_approval reads moves *to* approved and takes each for a move from
    # awaiting_approval (a query that also says so fetches a week of approvals to keep 2,000).
    # A second way into approved would need the from_status filter back there.
    assert {old for old, new in TRANSITIONS if new == Status.APPROVED} == {Status.AWAITING_APPROVAL}


def test_the_medians_run_one_query_each(workflow_factory, django_assert_num_queries):
    for minutes in (1, 2, 3):
        w = workflow_factory(age=dt.timedelta(hours=1))
        _transition(w, "awaiting_approval", w.created_at + dt.timedelta(minutes=minutes))
    with django_assert_num_queries(1):
        assert selectors.median_time_to_draft() == dt.timedelta(minutes=2)
    with django_assert_num_queries(1):
        assert selectors.median_time_to_approval() is None


def test_medians_are_empty_without_data(db):
    assert selectors.median_time_to_draft() is None
    assert selectors.median_time_to_approval() is None


def test_medians_read_only_the_newest_events_of_the_window(workflow_factory, monkeypatch):
    monkeypatch.setattr(selectors, "MEDIAN_SAMPLE", 2)
    now = timezone.now()
    # Oldest first: the two newest moves took 4 and 6 minutes; the oldest one 60.
    for hours_ago, minutes_to_draft in [(5, 60), (3, 4), (2, 6)]:
        w = workflow_factory(age=dt.timedelta(hours=hours_ago))
        drafted = w.created_at + dt.timedelta(minutes=minutes_to_draft)
        _transition(w, "awaiting_approval", drafted)
        _transition(w, "approved", drafted + dt.timedelta(minutes=minutes_to_draft),
                    from_status="awaiting_approval")  # fmt: skip
    assert drafted < now
    assert selectors.median_time_to_draft() == dt.timedelta(minutes=5)
    assert selectors.median_time_to_approval() == dt.timedelta(minutes=5)


def test_home_page_loads_the_overview_after_the_list(operator_client, workflow_factory):
    workflow_factory(status=Status.SENT)
    html = operator_client.get("/dashboard/").content.decode()
    assert 'hx-get="/dashboard/overview/"' in html and 'hx-trigger="load"' in html
    assert "<svg" not in html  # the list does not wait for a week of history
    assert '<script src="http' not in html  # no CDN
    overview = operator_client.get("/dashboard/overview/").content.decode()
    assert "<svg" in overview and 'class="o-done"' in overview
    assert "median time to draft" in overview


def test_the_chart_follows_new_runs_and_the_medians_are_cached_for_a_minute(
    operator_client, workflow_factory, django_assert_max_num_queries
):
    workflow_factory(status=Status.SENT)
    operator_client.get("/dashboard/overview/")
    with django_assert_max_num_queries(4):  # session, user, the data stamp: nothing else
        operator_client.get("/dashboard/overview/")
    workflow_factory(status=Status.FAILED)
    with django_assert_max_num_queries(5):  # + the stamp, the chart's one GROUP BY; no medians
        html = operator_client.get("/dashboard/overview/").content.decode()
    assert 'class="o-failed"' in html  # a new run moves the stamp, so the bars include it


def test_the_y_axis_counts_in_whole_steps():
    from dashboard import charts

    series = [{"day": dt.date(2026, 12, d), "counts": {"done": n}} for d, n in ((1, 9), (2, 3))]
    grid = [g["value"] for g in charts.stacked_bars(series, selectors.OUTCOMES)["grid"]]
    assert grid == [0, 3, 6, 9, 12]
    small = [{"day": dt.date(2026, 12, 1), "counts": {"done": 2}}]
    assert [g["value"] for g in charts.stacked_bars(small, selectors.OUTCOMES)["grid"]] == [
        0,
        1,
        2,
        3,
        4,
    ]
