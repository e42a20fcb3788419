"""The REST API under /api/: reads for staff, actions through the services, the schema."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import uuid

import hypothesis
import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from intake.models import FormSubmission
from intake.schema import WEBHOOK_PATH
from outreach.models import Decision, EmailDraft
from workflows.models import AuditEvent, Status, Trigger, Workflow, WorkflowError

pytestmark = pytest.mark.django_db
_seq = itertools.count(1)


def make_workflow(
    *,
    status: str = Status.AWAITING_APPROVAL,
    email: str | None = None,
    company: str = "Analytical Engines",
    form_id: str = "form-contact",
    age: dt.timedelta = dt.timedelta(minutes=3),
    draft: bool = True,
    **fields,
) -> Workflow:
    n = next(_seq)
    created = timezone.now() - age
    email = email if email is not None else f"lead{n}@example.com"
    submission = FormSubmission.objects.create(
        dedupe_key=f"test-{uuid.uuid4().hex}",
        shape="forms",
        signature_version="v3",
        raw_payload={"fields": [{"name": "email", "value": email}]},
        email=email,
        first_name="Ada",
        last_name="Lovelace",
        company=company,
        form_id=form_id,
        received_at=created,
    )
    workflow = Workflow.objects.create(submission=submission, status=status, **fields)
    Workflow.objects.filter(pk=workflow.pk).update(created_at=created)
    if draft:
        EmailDraft.objects.create(
            workflow=workflow,
            recipient=email,
            subject="Thanks for reaching out, Ada",
            body="Hi Ada,\n\nThanks for your message.\n",
            original_subject="Thanks for reaching out, Ada",
            original_body="Hi Ada,\n\nThanks for your message.\n",
            template="default",
            idempotency_key=f"wf{workflow.pk}-{uuid.uuid4().hex}",
        )
    return workflow


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api(operator) -> APIClient:
    client = APIClient()
    client.force_authenticate(operator)
    return client


@pytest.fixture
def viewer(django_user_model):
    """Staff, but without the approve/reject/replay permissions."""
    return django_user_model.objects.create_user(username="vic", password="pw", is_staff=True)


# --- Reading ------------------------------------------------------------------------------------


def test_list_filters_by_status_form_email_search_trigger_and_dates(api):
    failed = make_workflow(status=Status.FAILED, company="Babbage & Co", form_id="demo")
    waiting = make_workflow(email="grace@navy.example.mil")
    old = make_workflow(status=Status.SENT, age=dt.timedelta(days=10))
    replay = make_workflow(status=Status.PENDING, trigger=Trigger.REPLAY, replay_of=old)

    def ids(**params) -> list[int]:
        response = api.get("/api/workflows/", params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids(status="failed") == [failed.pk]
    assert ids(form_id="demo") == [failed.pk]
    assert ids(email="Grace@Navy.example.mil") == [waiting.pk]
    assert ids(q="babbage") == [failed.pk]
    assert ids(trigger="replay") == [replay.pk]
    week_ago = (timezone.now() - dt.timedelta(days=7)).date().isoformat()
    assert old.pk not in ids(since=week_ago)
    assert ids(until=week_ago) == [old.pk]


def test_list_rejects_unknown_status(api):
    response = api.get("/api/workflows/", {"status": "nope"})
    assert response.status_code == 400
    assert "status" in response.json()


def test_list_is_paginated_newest_first_by_cursor(api, django_assert_max_num_queries):
    made = [make_workflow(age=dt.timedelta(minutes=i)) for i in range(55)]
    first = api.get("/api/workflows/").json()
    assert "count" not in first and first["previous"] is None
    assert [r["id"] for r in first["results"]] == [w.pk for w in made[:50]]
    with django_assert_max_num_queries(3):  # user, token or session, one page: no COUNT
        second = api.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == [w.pk for w in made[50:]]
    assert second["next"] is None
    back = api.get(second["previous"]).json()
    assert [r["id"] for r in back["results"]] == [w.pk for w in made[:50]]
    # Filters carry into the cursor's links.
    filtered = api.get("/api/workflows/", {"status": "pending"}).json()
    assert all(r["status"] == "pending" for r in filtered["results"])


def test_list_runs_the_same_queries_for_5_rows_as_for_40(api):
    def queries_for(n: int) -> int:
        Workflow.objects.all().delete()
        for _ in range(n):
            make_workflow()
        with CaptureQueriesContext(connection) as ctx:
            assert api.get("/api/workflows/").status_code == 200
        return len(ctx.captured_queries)

    assert queries_for(5) == queries_for(40) <= 3


def test_detail_shows_submission_draft_errors_and_step_log(api):
    workflow = make_workflow(
        status=Status.FAILED,
        step_log={"resolve_contact": {"attempts": 2, "note": "HubSpot 502"}},
        last_error="HubSpot answered 502",
    )
    WorkflowError.objects.create(
        workflow=workflow,
        step="resolve_contact",
        attempt=1,
        exception_type="HubSpotError",
        message="502 Bad Gateway",
        retryable=True,
    )
    with CaptureQueriesContext(connection) as ctx:
        body = api.get(f"/api/workflows/{workflow.pk}/").json()
    assert len(ctx.captured_queries) <= 3
    assert body["submission"]["email"] == workflow.submission.email
    assert body["draft"]["subject"] == "Thanks for reaching out, Ada"
    assert body["errors"][0]["exception_type"] == "HubSpotError"
    assert body["step_log"]["resolve_contact"]["attempts"] == 2
    assert body["last_error"] == "HubSpot answered 502"


def test_detail_of_missing_workflow_is_404(api):
    assert api.get("/api/workflows/999999/").status_code == 404


def test_submission_detail_has_normalised_fields_raw_payload_and_runs(api):
    workflow = make_workflow(email="ada@example.com")
    body = api.get(f"/api/submissions/{workflow.submission_id}/").json()
    assert body["email"] == "ada@example.com"
    assert body["raw_payload"] == {"fields": [{"name": "email", "value": "ada@example.com"}]}
    assert [run["id"] for run in body["workflows"]] == [workflow.pk]


def test_stats_count_by_status_and_age_the_oldest_waiting_work(api):
    make_workflow(status=Status.PENDING, age=dt.timedelta(minutes=10))
    make_workflow(status=Status.AWAITING_APPROVAL, age=dt.timedelta(hours=2))
    make_workflow(status=Status.AWAITING_APPROVAL)
    body = api.get("/api/stats/").json()
    assert body["counts"]["pending"] == 1
    assert body["counts"]["failed"] == 0
    assert body["awaiting_approval"] == 2
    assert body["total"] == 3
    assert 595 < body["oldest_pending_age_seconds"] < 700
    assert 7195 < body["oldest_awaiting_approval_age_seconds"] < 7300


# --- Access -----------------------------------------------------------------------------------


def test_anonymous_requests_get_401_with_a_token_challenge():
    client = APIClient()
    response = client.get("/api/workflows/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert client.post("/api/workflows/1/approve/").status_code == 401


def test_non_staff_accounts_cannot_read(django_user_model):
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user(username="pat"))
    assert client.get("/api/stats/").status_code == 403


def test_token_authentication_works(operator):
    _, token = AuthToken.objects.create(user=operator)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/workflows/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/workflows/").status_code == 401


def test_viewer_without_permissions_gets_403_on_every_action(viewer):
    workflow = make_workflow(status=Status.AWAITING_APPROVAL)
    client = APIClient()
    client.force_authenticate(viewer)
    assert client.get(f"/api/workflows/{workflow.pk}/").status_code == 200
    base = f"/api/workflows/{workflow.pk}"
    assert client.post(f"{base}/approve/", {"version": 1}).status_code == 403
    assert client.post(f"{base}/reject/", {"reason": "spam", "version": 1}).status_code == 403
    assert client.post(f"{base}/replay/").status_code == 403
    assert client.post("/api/workflows/replay/", {"status": "failed"}).status_code == 403
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL
    assert Workflow.objects.count() == 1


# --- Acting -----------------------------------------------------------------------------------


def test_approve_with_an_edit_approves_through_the_service(api, operator):
    workflow = make_workflow()
    response = api.post(
        f"/api/workflows/{workflow.pk}/approve/",
        {"subject": "Your demo", "body": "Hi Ada, Tuesday?", "version": 1},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["ok"] is True
    draft = EmailDraft.objects.get(workflow=workflow)
    assert (draft.subject, draft.decision, draft.approver) == (
        "Your demo",
        Decision.APPROVED,
        operator,
    )
    assert AuditEvent.objects.filter(
        workflow=workflow, to_status=Status.APPROVED, actor_user=operator
    ).exists()


def test_second_approval_loses_the_race_with_409(api):
    workflow = make_workflow()
    assert api.post(f"/api/workflows/{workflow.pk}/approve/", {"version": 1}).status_code == 200
    response = api.post(f"/api/workflows/{workflow.pk}/approve/", {"version": 1})
    assert response.status_code == 409
    assert response.json()["message"].startswith("Already approved by olivia")


def test_approve_with_an_empty_subject_is_400(api):
    workflow = make_workflow()
    response = api.post(f"/api/workflows/{workflow.pk}/approve/", {"subject": " "}, format="json")
    assert response.status_code == 400
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL


def test_approve_without_a_draft_is_409(api):
    workflow = make_workflow(status=Status.FAILED, draft=False)
    assert api.post(f"/api/workflows/{workflow.pk}/approve/", {"version": 1}).status_code == 409


def test_reject_needs_a_reason(api):
    workflow = make_workflow()
    response = api.post(f"/api/workflows/{workflow.pk}/reject/", {}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()


def test_reject_with_a_reason_rejects(api):
    workflow = make_workflow()
    response = api.post(
        f"/api/workflows/{workflow.pk}/reject/",
        {"reason": "duplicate lead", "version": 1},
        format="json",
    )
    assert response.status_code == 200
    workflow.refresh_from_db()
    assert workflow.status == Status.REJECTED
    assert AuditEvent.objects.get(workflow=workflow, to_status=Status.REJECTED).reason == (
        "duplicate lead"
    )


def test_replay_creates_a_new_run_linked_to_the_original(api, operator):
    original = make_workflow(status=Status.FAILED)
    response = api.post(f"/api/workflows/{original.pk}/replay/", {"shadow": True}, format="json")
    assert response.status_code == 201, response.content
    (new_id,) = response.json()["created"]
    assert response.json()["shadow"] == [new_id]
    new = Workflow.objects.get(pk=new_id)
    assert (new.trigger, new.replay_of_id, new.status, new.shadow) == (
        Trigger.REPLAY,
        original.pk,
        Status.PENDING,
        True,
    )
    assert AuditEvent.objects.get(workflow=new, action="workflow.replayed").actor_user == operator
    original.refresh_from_db()
    assert original.status == Status.FAILED


def test_bulk_replay_replays_only_matching_failed_workflows_up_to_the_limit(api):
    failed = [
        make_workflow(status=Status.FAILED, form_id="demo", age=dt.timedelta(hours=i))
        for i in range(3)
    ]
    make_workflow(status=Status.FAILED, form_id="other")
    make_workflow(status=Status.REJECTED, form_id="demo")
    response = api.post("/api/workflows/replay/", {"form_id": "demo", "limit": 2}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["matched"], body["more"], len(body["created"])) == (2, True, 2)
    replayed = set(
        Workflow.objects.filter(pk__in=body["created"]).values_list("replay_of", flat=True)
    )
    assert replayed == {failed[2].pk, failed[1].pk}  # oldest first


def test_bulk_replay_limit_is_bounded(api):
    response = api.post("/api/workflows/replay/", {"limit": 100000}, format="json")
    assert response.status_code == 400


# --- Schema -----------------------------------------------------------------------------------


def test_schema_is_valid_openapi_3_and_documents_the_webhook(api):
    from drf_spectacular.validation import validate_schema

    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert reverse("intake:hubspot-forms") == WEBHOOK_PATH  # the documented path is served
    webhook = schema["paths"][WEBHOOK_PATH]["post"]
    headers = {p["name"] for p in webhook["parameters"]}
    assert headers == {
        "X-HubSpot-Signature-v3",
        "X-HubSpot-Request-Timestamp",
        "X-HubSpot-Signature",
        "X-HubSpot-Signature-Version",
    }
    assert set(webhook["responses"]) == {"202", "400", "401", "405", "413", "415", "503"}
    examples = webhook["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {"events", "workflow_contact", "forms"}
    for path in ("/api/workflows/", "/api/workflows/{id}/approve/", "/api/stats/"):
        for operation in schema["paths"][path].values():
            assert "200" in operation["responses"], path


def test_swagger_ui_renders(api):
    response = api.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_actions_need_their_own_permission_not_just_staff(viewer):
    viewer.user_permissions.add(Permission.objects.get(codename="reject_workflow"))
    workflow = make_workflow()
    client = APIClient()
    client.force_authenticate(viewer)
    assert client.post(f"/api/workflows/{workflow.pk}/approve/", {"version": 1}).status_code == 403
    response = client.post(
        f"/api/workflows/{workflow.pk}/reject/", {"reason": "spam", "version": 1}
    )
    assert response.status_code == 200


# --- Fuzzing (schemathesis) -------------------------------------------------------------------

schemathesis = pytest.importorskip("schemathesis")

#: Counted by the fuzz tests for docs/reliability.md (printed with -s).
API_CALLS = {"stateless": 0, "stateful": 0, "5xx": 0}


@pytest.fixture(scope="module", autouse=True)
def _report_fuzz_calls():
    yield
    if API_CALLS["stateless"] or API_CALLS["stateful"]:
        print(
            f"\nschemathesis: {API_CALLS['stateless']} stateless + {API_CALLS['stateful']} "
            f"stateful calls, 5xx = {API_CALLS['5xx']}"
        )


fuzzed_schema = schemathesis.pytest.from_fixture("wsgi_schema")


@pytest.fixture
def wsgi_schema(operator, settings):
    """The served schema, called through the real WSGI app with a token (no test client)."""
    from django.core.wsgi import get_wsgi_application

    settings.HUBSPOT_CLIENT_SECRET = "fuzz-secret"  # the webhook then refuses with 401, not 503
    for status in (Status.AWAITING_APPROVAL, Status.FAILED, Status.SENT):
        make_workflow(status=status)
    _, token = AuthToken.objects.create(user=operator)
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/", get_wsgi_application(), headers={"Authorization": f"Token {token}"}
    )
    schema.token = token
    return schema


@pytest.mark.django_db(transaction=True)
@fuzzed_schema.parametrize()
@hypothesis.settings(
    max_examples=int(os.environ.get("LEADLINE_FUZZ_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)
def test_fuzzed_requests_never_cause_a_server_error(case, wsgi_schema):
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        response_schema_conformance,
        status_code_conformance,
    )

    response = case.call(headers={"Authorization": f"Token {wsgi_schema.token}"})
    API_CALLS["stateless"] += 1
    API_CALLS["5xx"] += response.status_code >= 500
    case.validate_response(
        response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
    )


@pytest.mark.django_db(transaction=True)
def test_stateful_fuzzing_of_the_whole_api_never_causes_a_server_error(wsgi_schema):
    """Schemathesis chains calls (list → one workflow → approve/reject/replay with the ids and
    versions it read) through links it infers from the schema; any 5xx fails."""
    from schemathesis.checks import not_a_server_error

    base = wsgi_schema.as_state_machine()

    class APIWorkflow(base):
        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Token {wsgi_schema.token}"}}

        def after_call(self, response, case):
            API_CALLS["stateful"] += 1
            API_CALLS["5xx"] += response.status_code >= 500

        def validate_response(self, response, case, **kwargs):
            case.validate_response(response, checks=[not_a_server_error])

    APIWorkflow.run(
        settings=hypothesis.settings(
            max_examples=int(os.environ.get("LEADLINE_FUZZ_EXAMPLES", "15")),
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
    print(f"\nschemathesis stateful: {API_CALLS['stateful']} calls, 5xx = {API_CALLS['5xx']}")
    assert API_CALLS["stateful"] > 0 and API_CALLS["5xx"] == 0


@pytest.mark.parametrize("raw", ["p=notadate", "p=99999-01-01T00:00:00"])
def test_an_edited_list_cursor_is_404_not_500(api, raw):
    import base64

    cursor = base64.b64encode(raw.encode()).decode()
    response = api.get("/api/workflows/", {"cursor": cursor})
    assert response.status_code == 404
    assert response.json()["detail"] == "Invalid cursor"
