"""The workflow list: filters, search, keyset pages, tab counts, htmx fragments."""

from __future__ import annotations

import datetime as dt
import warnings

import pytest
from django.core.cache import cache
from django.core.cache.backends.base import CacheKeyWarning
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard import selectors
from dashboard.tests.conftest import make_many
from workflows.models import Status

pytestmark = pytest.mark.django_db

LIST = "/dashboard/"


@pytest.fixture
def sixty(db):
    statuses = [Status.AWAITING_APPROVAL, Status.FAILED, Status.COMPLETED, Status.RUNNING]
    return make_many(
        [
            {
                "status": statuses[i % 4],
                "first_name": f"Lead{i:02d}",
                "company": "Globex" if i % 5 == 0 else "Initech",
                "form_id": "form-demo" if i % 2 else "form-contact",
                "age": dt.timedelta(minutes=i),
            }
            for i in range(60)
        ]
    )


def _ids(response) -> list[int]:
    return [w.pk for w in response.context["page"].rows]


def test_full_page_runs_a_bounded_number_of_queries(
    operator_client, sixty, django_assert_max_num_queries
):
    # session + user + groups/perms, 10 capped tab counts, the page, forms (the overview of
    # the last 7 days loads afterwards, from its own URL), the last Forms poll, form and owner
    # names (one query per kind)
    with django_assert_max_num_queries(20):
        response = operator_client.get(LIST)
    assert response.status_code == 200
    assert len(_ids(response)) == selectors.PAGE_SIZE


@pytest.mark.parametrize(
    "query",
    ["status=failed", "q=globex", "q=Lead1", "form=form-demo", "status=awaiting_approval&q=init"],
)
def test_filtered_fragments_run_a_bounded_number_of_queries(
    operator_client, sixty, django_assert_max_num_queries, query
):
    # session, user, 2 permission lookups, the data stamp, 10 capped tab counts, the page: 16
    with django_assert_max_num_queries(16):
        response = operator_client.get(f"{LIST}?{query}", HTTP_HX_REQUEST="true")
    assert response.status_code == 200


def test_a_poll_refreshes_the_table_tabs_and_chart_together(
    operator_client, sixty, workflow_factory, django_assert_max_num_queries
):
    poll = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "workflow-table"}
    operator_client.get(LIST, **poll)
    # Nothing changed: session, user, perms, the data stamp, one page query.
    with django_assert_max_num_queries(6):
        response = operator_client.get(LIST, **poll)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="workflow-table"')
    assert 'hx-trigger="every 5s, refresh"' in html and "data-poll" in html
    # The tabs and the overview ride along out of band, read at the same data stamp.
    assert '<nav class="tabs" id="status-tabs" aria-label="Status" hx-swap-oob="true">' in html
    assert '<section class="overview" id="overview" hx-swap-oob="true">' in html
    all_before = response.context["tabs"][0]["count"]

    workflow_factory()
    response = operator_client.get(LIST, **poll)
    assert int(response.context["tabs"][0]["count"]) == int(all_before) + 1
    assert response.context["chart"]["total"] >= 1


def test_a_search_reads_its_page_and_counts_without_parallel_workers(
    operator_client, workflow_factory
):
    workflow_factory(company="Globex")
    with CaptureQueriesContext(connection) as search:
        operator_client.get(f"{LIST}?q=globex", HTTP_HX_REQUEST="true")
    sql = [q["sql"] for q in search.captured_queries]
    serial = sql.index("SET LOCAL max_parallel_workers_per_gather = 0")
    reads = [i for i, s in enumerate(sql) if s.startswith("SELECT") and "UPPER(" in s]
    assert len(reads) == 2 and min(reads) > serial  # the page and the tab counts
    with CaptureQueriesContext(connection) as plain:
        operator_client.get(LIST, HTTP_HX_REQUEST="true")
    assert not [q for q in plain.captured_queries if "max_parallel" in q["sql"]]


def test_plain_requests_get_the_full_page_and_htmx_requests_a_fragment(operator_client, sixty):
    page = operator_client.get(LIST).content.decode()
    fragment = operator_client.get(LIST, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" in page and 'id="results"' in page and 'id="overview"' in page
    assert "<html" not in fragment and 'id="results"' in fragment
    assert 'id="overview"' not in fragment
    assert 'hx-swap-oob="true"' in fragment  # keeps the filter form's status in step


def test_responses_vary_on_the_htmx_header(operator_client):
    assert "HX-Request" in operator_client.get(LIST)["Vary"]


def test_the_status_filter_shows_only_that_status(operator_client, sixty):
    response = operator_client.get(f"{LIST}?status=failed")
    rows = response.context["page"].rows
    assert rows and {w.status for w in rows} == {Status.FAILED}


def test_search_matches_email_name_or_company(operator_client, workflow_factory):
    grace = workflow_factory(first_name="Grace", last_name="Hopper", company="Navy")
    alan = workflow_factory(first_name="Alan", email="alan@bletchley.example", company="GCHQ")
    assert _ids(operator_client.get(f"{LIST}?q=hopper")) == [grace.pk]
    assert _ids(operator_client.get(f"{LIST}?q=BLETCHLEY")) == [alan.pk]
    assert _ids(operator_client.get(f"{LIST}?q=navy")) == [grace.pk]


def test_form_and_date_filters(operator_client, workflow_factory):
    old = workflow_factory(form_id="form-old", age=dt.timedelta(days=3))
    new = workflow_factory(form_id="form-new")
    today = timezone.localdate()
    assert _ids(operator_client.get(f"{LIST}?form=form-old")) == [old.pk]
    assert _ids(operator_client.get(f"{LIST}?date_from={today}")) == [new.pk]
    until = today - dt.timedelta(days=2)
    assert _ids(operator_client.get(f"{LIST}?date_to={until}")) == [old.pk]


def test_pages_go_older_and_newer_newest_first_without_gaps(operator_client, sixty):
    first = operator_client.get(LIST)
    page = first.context["page"]
    assert page.newer is None and page.older
    second = operator_client.get(f"{LIST}?before={page.older}")
    third = operator_client.get(f"{LIST}?before={second.context['page'].older}")
    assert third.context["page"].older is None
    seen = _ids(first) + _ids(second) + _ids(third)
    expected = [w.pk for w in sorted(sixty, key=lambda w: (w.created_at, w.pk), reverse=True)]
    assert seen == expected
    back = operator_client.get(f"{LIST}?after={third.context['page'].newer}")
    assert _ids(back) == _ids(second)
    top = operator_client.get(f"{LIST}?after={back.context['page'].newer}")
    assert _ids(top) == _ids(first) and top.context["page"].is_first


def test_pagination_never_counts_the_table(
    operator_client, sixty, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    with CaptureQueriesContext(connection) as ctx:
        operator_client.get(f"{LIST}?before=9999999999999999_1", HTTP_HX_REQUEST="true")
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 1001" in sql for sql in counts)


def test_tab_counts_are_capped(operator_client, sixty, monkeypatch):
    monkeypatch.setattr(selectors, "COUNT_CAP", 10)
    tabs = {t["status"]: t["count"] for t in operator_client.get(LIST).context["tabs"]}
    assert tabs["failed"] == "10+" and tabs[""] == "10+"
    assert tabs["rejected"] == "0"


def test_a_search_counts_its_matches_in_one_capped_query(
    operator_client, sixty, monkeypatch, django_assert_max_num_queries
):
    # Globex: i % 5 == 0, so 12 of the sixty; statuses cycle over four, so 3 each.
    response = operator_client.get(f"{LIST}?q=globex")
    tabs = {t["status"]: t["count"] for t in response.context["tabs"]}
    assert tabs[""] == "12" and tabs["failed"] == "3" and tabs["rejected"] == "0"
    monkeypatch.setattr(selectors, "COUNT_CAP", 10)
    with CaptureQueriesContext(connection) as ctx:
        response = operator_client.get(f"{LIST}?q=lead", HTTP_HX_REQUEST="true")
    tabs = {t["status"]: t["count"] for t in response.context["tabs"]}
    # Sixty match; the sample of 11 holds lower bounds, and an empty status shows no number.
    assert tabs[""] == "10+" and tabs["rejected"] == ""
    assert all(tabs[s].endswith("+") for s in ("failed", "completed", "running"))
    counting = [q["sql"] for q in ctx.captured_queries if '"workflows"."status"' in q["sql"]]
    assert len([sql for sql in counting if "LIMIT 11" in sql]) == 1


def test_form_choices_are_distinct_sorted_and_skip_blanks(db, workflow_factory):
    for form_id in ["form-b", "form-a", "form-b", "", "form-c"]:
        workflow_factory(form_id=form_id)
    assert selectors.form_choices() == ["form-a", "form-b", "form-c"]
    cache.clear()
    assert selectors.form_choices(limit=2) == ["form-a", "form-b"]


def test_tab_counts_are_cached_until_the_data_changes(
    operator_client, workflow_factory, django_assert_max_num_queries
):
    workflow_factory()
    operator_client.get(LIST, HTTP_HX_REQUEST="true")
    with django_assert_max_num_queries(6):  # cached: no count query, only the stamp
        response = operator_client.get(LIST, HTTP_HX_REQUEST="true")
    workflow_factory()
    response = operator_client.get(LIST, HTTP_HX_REQUEST="true")
    tabs = {t["status"]: t["count"] for t in response.context["tabs"]}
    assert tabs[Status.AWAITING_APPROVAL] == "2"  # a new row moves the stamp: counts agree


def test_rows_show_lead_form_status_age_and_owner(operator_client, workflow_factory):
    workflow_factory(
        first_name="Grace", company="Navy", form_id="form-x", owner_id="owner-7", status="failed"
    )
    html = operator_client.get(LIST).content.decode()
    for text in ("Grace Lovelace", "Navy", "form-x", "owner-7", "badge s-failed", "3m"):
        assert text in html


def test_replay_all_failed_matching_the_filter(operator_client, workflow_factory):
    from workflows.models import Trigger, Workflow

    globex = workflow_factory(status=Status.FAILED, company="Globex")
    workflow_factory(status=Status.FAILED, company="Initech")
    workflow_factory(status=Status.AWAITING_APPROVAL, company="Globex")
    response = operator_client.post(
        reverse("dashboard:replay_failed"), {"q": "globex", "confirm": "on"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert b"Replaying 1 failed" in response.content
    replays = Workflow.objects.filter(trigger=Trigger.REPLAY)
    assert [w.replay_of_id for w in replays] == [globex.pk]


def test_replay_all_failed_needs_confirmation(operator_client, workflow_factory):
    from workflows.models import Workflow

    workflow_factory(status=Status.FAILED)
    response = operator_client.post(reverse("dashboard:replay_failed"), {})
    assert response.status_code == 400
    assert Workflow.objects.count() == 1


def test_replay_all_failed_needs_the_replay_permission(viewer_client, workflow_factory):
    from workflows.models import Workflow

    workflow_factory(status=Status.FAILED)
    response = viewer_client.post(reverse("dashboard:replay_failed"), {"confirm": "on"})
    assert response.status_code == 403
    assert Workflow.objects.count() == 1


def test_replay_selected_rows(operator_client, workflow_factory):
    from workflows.models import Workflow

    a, b = workflow_factory(status=Status.FAILED), workflow_factory(status=Status.COMPLETED)
    response = operator_client.post(reverse("dashboard:replay_selected"), {"ids": [a.pk, b.pk]})
    assert response.status_code == 302
    assert set(
        Workflow.objects.filter(replay_of__isnull=False).values_list("replay_of", flat=True)
    ) == {
        a.pk,
        b.pk,
    }


def test_the_date_filter_finds_a_replay_of_an_old_lead_through_the_ingest_path(
    operator_client, operator
):
    # workflow_at narrows the date filter on form_submissions (issue #16): a lead received
    # long ago and replayed today must still be found from today, and only its replay.
    from intake.payloads import parse_body
    from intake.services import submissions_ingest
    from workflows.models import Workflow
    from workflows.services import workflows_replay

    body = b'{"formId":"form-7","fields":[{"name":"email","value":"old@hooli.example"}]}'
    result = submissions_ingest(
        items=parse_body(body, query={}), signature_version="v3", received_at=timezone.now()
    )
    [original] = result.workflow_ids
    long_ago = timezone.now() - dt.timedelta(days=30)
    Workflow.objects.filter(pk=original).update(status=Status.FAILED, created_at=long_ago)
    Workflow.objects.get(pk=original).submission.__class__.objects.update(workflow_at=long_ago)
    today = timezone.localdate()
    query = f"{LIST}?q=hooli&form=form-7&date_from={today}"
    assert _ids(operator_client.get(query)) == []

    [replay] = workflows_replay(workflow_ids=[original], user=operator).created

    assert _ids(operator_client.get(query)) == [replay]


def test_tab_counts_are_cached_per_time_zone(db, workflow_factory):
    # The dates of a filter are days in the operator's zone: 02:00 UTC on 10 March is still
    # 9 March in New York, so the same filter counts it in one zone and not in the other,
    # even under one data stamp (the counts cache must not hand one zone's answer to the other).
    workflow = workflow_factory(status=Status.FAILED)
    at = dt.datetime(2025, 3, 10, 2, 0, tzinfo=dt.UTC)
    type(workflow).objects.filter(pk=workflow.pk).update(created_at=at)
    type(workflow.submission).objects.filter(pk=workflow.submission_id).update(workflow_at=at)
    filters = selectors.WorkflowFilters(date_from=dt.date(2025, 3, 10))
    stamp = selectors.data_stamp()
    with timezone.override("UTC"):
        assert selectors.status_counts(filters, stamp)[Status.FAILED].n == 1
    with timezone.override("America/New_York"):
        assert selectors.status_counts(filters, stamp)[Status.FAILED].n == 0
    with timezone.override("UTC"):
        assert selectors.status_counts(filters, stamp)[Status.FAILED].n == 1


def test_counts_cache_keys_are_safe_for_any_search_text(db, workflow_factory):
    # What an operator types (spaces, a newline, any length) goes into the counts' cache key;
    # memcached refuses such keys, so Django warns (CacheKeyWarning) on every backend.
    workflow_factory(company="Acme Widgets")
    stamp = selectors.data_stamp()
    typed = ["acme widgets", "acme\nwidgets", "a" * 300, "acme"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheKeyWarning)
        counts = [selectors.status_counts(selectors.WorkflowFilters(q=q), stamp) for q in typed]
    found = [each[""].n for each in counts]  # "": the All tab
    assert found == [1, 0, 0, 1]  # one key per text: no search is answered from another's


def test_an_event_lead_shows_and_is_found_by_its_crm_contact_once_resolved(
    operator_client, hubspot_sandbox
):
    """A Webhooks API event carries only the contact id: the pipeline fills the lead's blank
    columns from the HubSpot contact it resolved, so the row has a name and the search (which
    reads only those columns, through their indexes) finds it. The delivery stays as it came."""
    from intake.contacts import contact_erase
    from intake.models import FormSubmission
    from intake.payloads import parse_body
    from intake.services import submissions_ingest
    from workflows import pipeline
    from workflows.models import Workflow

    sandbox = hubspot_sandbox
    email = "margaret.hamilton+leads@apollo.example"
    sandbox.seed_contact(
        id="9101", email=email, firstname="Margaret", lastname="Hamilton", company="Apollo Software"
    )
    body = (
        b'[{"eventId":71,"subscriptionId":3,"portalId":62515,"occurredAt":1764600000000,'
        b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":9101,'
        b'"changeFlag":"CREATED","changeSource":"CRM"}]'
    )
    result = submissions_ingest(
        items=parse_body(body, query={}), signature_version="v3", received_at=timezone.now()
    )
    [workflow_id] = result.workflow_ids
    delivered = FormSubmission.objects.get(workflows__pk=workflow_id).raw_payload
    assert _ids(operator_client.get(LIST, {"q": email})) == []  # nothing to find yet

    pipeline.run_workflow(workflow_id, task_id="task-1")

    workflow = Workflow.objects.select_related("submission").get(pk=workflow_id)
    assert workflow.status == Status.AWAITING_APPROVAL and workflow.draft.recipient == email
    html = operator_client.get(LIST).content.decode()
    assert "Margaret Hamilton" in html and email in html and "(no name)" not in html
    for term in (email, "hamilton", "APOLLO SOFTWARE", "margaret"):
        assert _ids(operator_client.get(LIST, {"q": term})) == [workflow_id], term
    assert workflow.submission.raw_payload == delivered  # as delivered, never rewritten
    detail = operator_client.get(f"/dashboard/workflows/{workflow_id}/").content.decode()
    assert "Apollo Software" in detail

    contact_erase(contact_id="9101")  # a privacy deletion blanks the filled columns too
    assert _ids(operator_client.get(f"{LIST}?q=hamilton")) == []
    erased = FormSubmission.objects.get(pk=workflow.submission_id)
    assert (erased.email, erased.first_name, erased.last_name, erased.company) == ("",) * 4
