"""The approval inbox: oldest first, the speed-to-lead clock, bulk decisions."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from workflows.models import Status

pytestmark = pytest.mark.django_db

INBOX = "/dashboard/inbox/"
BULK = "/dashboard/inbox/bulk/"


def test_inbox_lists_waiting_drafts_oldest_first(operator_client, workflow_factory):
    newer = workflow_factory(age=dt.timedelta(minutes=2))
    older = workflow_factory(age=dt.timedelta(minutes=40))
    workflow_factory(status=Status.FAILED)
    rows = operator_client.get(INBOX).context["rows"]
    assert [w.pk for w in rows] == [older.pk, newer.pk]


def test_leads_past_the_speed_to_lead_target_are_highlighted(
    operator_client, workflow_factory, settings
):
    settings.SPEED_TO_LEAD_TARGET_MINUTES = 15
    workflow_factory(age=dt.timedelta(minutes=40))
    workflow_factory(age=dt.timedelta(minutes=2))
    html = operator_client.get(INBOX).content.decode()
    assert html.count('class="clock overdue"') == 1
    assert html.count('class="clock"') == 1


def test_inbox_runs_a_bounded_number_of_queries(
    operator_client, workflow_factory, django_assert_max_num_queries
):
    for _ in range(15):
        workflow_factory()
    with django_assert_max_num_queries(6):
        operator_client.get(INBOX)


def test_the_inbox_runs_as_many_queries_for_thirty_rows_as_for_one(
    operator_client, workflow_factory
):
    workflow_factory(owner_id="owner-9")
    operator_client.get(INBOX)  # the names of forms and owners are kept a minute per process
    with CaptureQueriesContext(connection) as one:
        operator_client.get(INBOX)
    for _ in range(29):
        workflow_factory(owner_id="owner-9")
    with CaptureQueriesContext(connection) as thirty:
        response = operator_client.get(INBOX)
    assert len(response.context["rows"]) == 30
    assert len(thirty) == len(one)


def _row_markup(html: str, pk: int) -> str:
    """One row's <tr>, its CSRF tokens and clock readings blanked (they differ per render)."""
    row = re.search(rf'<tr class="[^"]*" id="row-{pk}".*?</tr>', html, re.S).group(0)
    row = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken"', row)
    return re.sub(r"(<time [^>]*>)[^<]*(</time>)", r"\1\2", row)


def test_a_row_reads_the_same_on_the_page_as_in_an_actions_answer(
    operator_client, workflow_factory
):
    """The page works out each row's links, id and version once in the view, and asks the
    permissions once per page; an action on a row answers that row rendered alone. Both must
    give the same markup, or a row would change under the operator's cursor."""
    workflow = workflow_factory(age=dt.timedelta(days=3), owner_id="owner-9")
    workflow_factory()  # another row, so the page's rows are not all the same
    answer = operator_client.post(
        reverse("dashboard:draft_edit", args=[workflow.pk]),
        {"inbox_row": "1", "version": 1, "subject": "Better <b>", "body": "Hi & bye"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    page = operator_client.get(INBOX).content.decode()
    alone = _row_markup(answer, workflow.pk)
    assert alone == _row_markup(page, workflow.pk)
    for name in ("workflow_detail", "workflow_approve", "workflow_reject", "draft_edit"):
        assert f'"{reverse(f"dashboard:{name}", args=[workflow.pk])}"' in alone
    assert f'name="version_{workflow.pk}" value="2"' in alone
    assert alone.count('name="version" value="2"') == 3  # approve, reject and edit forms
    assert "Better &lt;b&gt;" in alone and "Hi &amp; bye" in alone


def test_inbox_poll_returns_the_table_fragment(operator_client, workflow_factory):
    workflow_factory()
    html = operator_client.get(INBOX, HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="inbox-table"') and "<html" not in html


def test_bulk_approve_reports_each_outcome_including_lost_races(operator_client, workflow_factory):
    a, b = workflow_factory(), workflow_factory()
    gone = workflow_factory(status=Status.REJECTED)
    response = operator_client.post(
        BULK,
        {
            "ids": [a.pk, b.pk, gone.pk],
            "action": "approve",
            "confirm": "on",
            **{f"version_{w.pk}": 1 for w in (a, b, gone)},
        },
        HTTP_HX_REQUEST="true",
    )
    outcomes = {o["id"]: o for o in response.context["outcomes"]}
    assert outcomes[a.pk]["ok"] and outcomes[b.pk]["ok"]
    assert not outcomes[gone.pk]["ok"] and "Already rejected" in outcomes[gone.pk]["message"]
    a.refresh_from_db()
    assert a.status == Status.COMPLETED
    assert b'id="outcomes"' in response.content


def test_bulk_actions_need_the_confirmation(operator_client, workflow_factory):
    workflow = workflow_factory()
    response = operator_client.post(BULK, {"ids": [workflow.pk], "action": "approve"})
    assert response.status_code == 400
    assert b"confirmation" in response.content
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL


def test_bulk_reject_needs_a_reason(operator_client, workflow_factory):
    workflow = workflow_factory()
    response = operator_client.post(
        BULK, {"ids": [workflow.pk], "action": "reject", "confirm": "on"}
    )
    assert response.status_code == 400
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL


def test_bulk_reject_with_a_reason(operator_client, workflow_factory):
    a, b = workflow_factory(), workflow_factory()
    response = operator_client.post(
        BULK,
        {
            "ids": [a.pk, b.pk],
            "action": "reject",
            "reason": "test leads",
            "confirm": "on",
            **{f"version_{w.pk}": 1 for w in (a, b)},
        },
    )
    assert response.status_code == 200
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == b.status == Status.REJECTED


def test_bulk_without_selection_is_refused(operator_client):
    response = operator_client.post(BULK, {"action": "approve", "confirm": "on"})
    assert response.status_code == 400
    assert b"Select at least one" in response.content


def test_inbox_link_in_navigation(operator_client):
    assert reverse("dashboard:inbox").encode() in operator_client.get("/dashboard/").content
