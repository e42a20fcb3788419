"""No 500 from operator input: hypothesis throws arbitrary query strings and form fields at every
dashboard page and action, as a staff operator, and any 5xx (or exception) fails the test.

``LEADLINE_FUZZ_EXAMPLES`` sets the examples per test (default 40, well under a minute)."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dashboard.tests.conftest import make_workflow
from workflows.models import Status

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("LEADLINE_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: What operators (and their browsers' address bars) actually send, and what breaks parsers.
NASTY = st.sampled_from(
    [
        "",
        "0",
        "-1",
        "1",
        "99999999999999999999999_1",
        "1_99999999999999999999999",
        "-5_-5",
        "9" * 400,
        "²_1",
        "1_",
        "_",
        "\x00",
        "a\x00b",
        "9999-12-31",
        "0001-01-01",
        "2026-02-30",
        "%",
        "' OR 1=1 --",
        "\ud7ff",
        "😀" * 50,
        "x" * 5000,
        "awaiting_approval",
        "failed",
        "on",
        "yes",
        "approve",
        "reject",
    ]
)
VALUE = st.one_of(NASTY, st.text(max_size=60), st.integers().map(str))
LIST_PARAMS = ["status", "q", "form", "date_from", "date_to", "before", "after", "page"]


def params(names: list[str]) -> st.SearchStrategy[dict[str, list[str]]]:
    name = st.one_of(st.sampled_from(names), st.text(min_size=1, max_size=12))
    return st.dictionaries(name, st.lists(VALUE, min_size=1, max_size=3), max_size=6)


@pytest.fixture
def rows(db):
    waiting = make_workflow(status=Status.AWAITING_APPROVAL)
    failed = make_workflow(status=Status.FAILED, draft=False)
    return waiting, failed


REQUESTS = {"sent": 0, "5xx": 0}


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print(f"\ndashboard/admin fuzz: {REQUESTS['sent']} requests, 5xx = {REQUESTS['5xx']}")


def _no_server_error(response) -> None:
    REQUESTS["sent"] += 1
    REQUESTS["5xx"] += response.status_code >= 500
    assert response.status_code < 500, response.content[:500]


@FUZZ
@given(query=params(LIST_PARAMS))
@example(query={"before": ["99999999999999999999999_1"]})
@example(query={"date_to": ["9999-12-31"], "after": ["1_99999999999999999999999"]})
def test_the_list_never_answers_5xx(operator_client, rows, query):
    _no_server_error(operator_client.get(reverse("dashboard:workflow_list"), query))
    _no_server_error(
        operator_client.get(reverse("dashboard:workflow_list"), query, HTTP_HX_REQUEST="true")
    )


@FUZZ
@given(query=params(["x"]), pk=st.integers(min_value=0, max_value=2**70))
def test_the_read_pages_never_answer_5xx(operator_client, rows, query, pk):
    for name in ("dashboard:inbox", "dashboard:overview"):
        _no_server_error(operator_client.get(reverse(name), query))
    detail = reverse("dashboard:workflow_detail", args=[rows[0].pk])
    _no_server_error(operator_client.get(detail.replace(str(rows[0].pk), str(pk)), query))


ACTION_FIELDS = [
    "subject",
    "body",
    "version",
    "reason",
    "shadow",
    "sent",
    "note",
    "ids",
    "action",
    "confirm",
    "status",
    "q",
    "form",
    "date_from",
    "date_to",
]


@FUZZ
@given(
    data=params(ACTION_FIELDS),
    version_field=st.dictionaries(
        st.sampled_from(["version_1", "version_x", "version_99999999999999999999", "version_"]),
        VALUE,
        max_size=2,
    ),
    which=st.sampled_from(["waiting", "failed", "huge"]),
)
@example(data={"subject": ["s" * 301], "version": ["1"]}, version_field={}, which="waiting")
@example(data={"ids": ["²"], "action": ["approve"]}, version_field={"version_1": "²"}, which="huge")
def test_the_actions_never_answer_5xx(operator_client, rows, data, version_field, which):
    waiting, failed = rows
    pk = {"waiting": waiting.pk, "failed": failed.pk, "huge": 2**40}[which]
    form = {**data, **version_field}
    for name in ("workflow_approve", "workflow_reject", "draft_edit", "resolve_send"):
        _no_server_error(operator_client.post(reverse(f"dashboard:{name}", args=[pk]), form))
    for name in ("replay_failed", "replay_selected", "inbox_bulk"):
        _no_server_error(operator_client.post(reverse(f"dashboard:{name}"), form))
    _no_server_error(operator_client.post(reverse("dashboard:workflow_replay", args=[pk]), form))


ADMIN_PAGES = [
    "admin:workflows_workflow_changelist",
    "admin:workflows_workflowerror_changelist",
    "admin:workflows_auditevent_changelist",
    "admin:outreach_emaildraft_changelist",
    "admin:intake_formsubmission_changelist",
    "admin:intake_lead_changelist",
    "admin:dashboard_apitoken_changelist",
]
ADMIN_PARAMS = [
    "q",
    "o",
    "p",
    "e",
    "status__exact",
    "trigger__exact",
    "shadow__exact",
    "created_at__year",
    "created_at__month",
    "created_at__day",
    "id__in",
    "email",
    "token_key",
    "_changelist_filters",
    "all",
]


@FUZZ
@given(query=params(ADMIN_PARAMS), page=st.sampled_from(ADMIN_PAGES))
@example(
    query={"created_at__year": ["99999"], "created_at__month": ["13"]},
    page="admin:workflows_workflow_changelist",
)
@example(query={"q": ["a\x00b"], "p": ["99999999999999999999"]}, page=ADMIN_PAGES[0])
# Found by this fuzz: int() reads the underscore, datetime() overflows (was a 500).
@example(
    query={"created_at__year": ["99999999999999999999999_1"]},
    page="admin:workflows_workflow_changelist",
)
# Found by this fuzz: a NUL in a text filter reached PostgreSQL when the page ran (was a 500).
@example(query={"trigger__exact": ["\x00"]}, page="admin:workflows_workflow_changelist")
def test_the_admin_changelists_never_answer_5xx(superuser_client, rows, query, page):
    _no_server_error(superuser_client.get(reverse(page), query))


@pytest.mark.parametrize(
    ("page", "lookup"),
    [
        ("admin:workflows_workflow_changelist", "trigger__exact"),
        ("admin:workflows_auditevent_changelist", "actor"),
        ("admin:intake_formsubmission_changelist", "email"),
        ("admin:dashboard_apitoken_changelist", "token_key"),
    ],
)
def test_a_nul_in_an_admin_filter_is_refused_as_a_bad_filter(superuser_client, rows, page, lookup):
    response = superuser_client.get(reverse(page), {lookup: "a\x00b"})

    # Django's answer to any bad lookup: back to the list with "?e=1" ("Database error").
    assert response.status_code == 302, response.status_code
    assert response.url.endswith("?e=1")


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser(username="root", password="pw-root-1234")
    client.force_login(user)
    return client
