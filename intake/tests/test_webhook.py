"""The webhook contract (DESIGN.md), end to end through the URL, the view and the database."""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.db import OperationalError, connection, transaction
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from intake import services
from intake.models import FormSubmission, NonLeadDelivery
from intake.tests.conftest import (
    SECRET,
    WEBHOOK_PATH,
    queued_tasks,
    sample,
    signature_headers,
)
from workflows.models import AuditEvent, Workflow

pytestmark = pytest.mark.django_db


def event_batch(size: int, *, first_object_id: int = 9000) -> list[dict]:
    return [
        {
            "eventId": 7000 + i,
            "subscriptionId": 12345,
            "portalId": 62515,
            "appId": 54321,
            "occurredAt": 1764201600000 + i,
            "subscriptionType": "contact.creation",
            "attemptNumber": 0,
            "objectId": first_object_id + i,
            "changeSource": "FORM",
            "changeFlag": "NEW",
        }
        for i in range(size)
    ]


def forms_body(**fields: str) -> dict:
    values = {"email": "lin@example.com", "firstname": "Lin", **fields}
    return {
        "portalId": 62515,
        "formGuid": "form-1",
        "submittedAt": "1764235200000",
        "fields": [{"name": name, "value": value} for name, value in values.items()],
    }


def assert_nothing_stored() -> None:
    assert FormSubmission.objects.count() == 0
    assert Workflow.objects.count() == 0
    assert AuditEvent.objects.count() == 0


# --- accepted deliveries ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample_name", "shape", "email"),
    [
        ("forms-submission.json", "forms", "grace@navy.example.mil"),
        ("workflow-contact-v3.json", "workflow", "ada.lovelace@example.com"),
        ("workflow-contact-legacy.json", "workflow", "jose.nunez@example.org"),
    ],
)
def test_it_accepts_each_single_lead_shape(post_webhook, sample_name, shape, email):
    response = post_webhook(sample(sample_name))

    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1 and body["duplicates"] == 0
    submission = FormSubmission.objects.get(pk=body["submission_ids"][0])
    assert (submission.shape, submission.email, submission.signature_version) == (
        shape,
        email,
        "v3",
    )
    workflow = submission.workflows.get()
    assert (workflow.status, workflow.trigger, workflow.enqueued_at) == ("pending", "webhook", None)
    audit = AuditEvent.objects.get(workflow=workflow)
    assert (audit.actor, audit.action, audit.object_id) == (
        "hubspot",
        "submission.received",
        str(submission.pk),
    )


def test_a_workflow_custom_body_starts_one_lead_that_its_contact_event_joins(post_webhook):
    # A workflow's "Send a webhook" set to *Customize request body* posts the chosen
    # properties flat. It was refused with a 400, which HubSpot workflows never retry.
    custom = {"email": "ada@example.com", "firstname": "Ada", "hs_object_id": "7101"}

    first = post_webhook(custom, version="v2")
    again = post_webhook(custom, version="v2")  # HubSpot's retry of the same delivery
    event = post_webhook(
        [{**event_batch(1)[0], "objectId": 7101}]  # the contact's creation event
    )

    assert first.status_code == 202, first.content
    assert (first.json()["accepted"], first.json()["workflows_started"]) == (1, 1)
    assert again.json()["duplicates"] == 1
    assert (event.json()["accepted"], event.json()["joined"]) == (1, 1)
    submission = FormSubmission.objects.get(pk=first.json()["submission_ids"][0])
    assert (submission.shape, submission.email, submission.object_id) == (
        "workflow",
        "ada@example.com",
        "7101",
    )
    assert Workflow.objects.count() == 1


def test_it_stores_non_ascii_lead_fields_exactly(post_webhook):
    response = post_webhook(sample("workflow-contact-legacy.json"))

    submission = FormSubmission.objects.get(pk=response.json()["submission_ids"][0])
    assert (submission.last_name, submission.company) == ("Núñez", "Ñandú Logística")
    assert submission.raw_payload == json.loads(sample("workflow-contact-legacy.json"))


def test_events_sharing_an_event_id_are_both_stored(post_webhook):
    response = post_webhook(sample("events-batch.json"))

    assert response.status_code == 202
    assert (response.json()["accepted"], response.json()["ignored"]) == (2, 1)
    assert FormSubmission.objects.filter(raw_payload__eventId=1001).count() == 2
    assert Workflow.objects.filter(status="pending").count() == 2


def test_a_100_event_batch_is_stored_in_a_bounded_number_of_queries(
    post_webhook, django_assert_max_num_queries
):
    # PostgreSQL: savepoint, one statement (submissions, leads, lead keys, workflows, audit
    # rows), release. SQLite: one statement each, and a few chunks of 999 parameters.
    with django_assert_max_num_queries(3 if connection.vendor == "postgresql" else 14):
        response = post_webhook(event_batch(100))

    assert response.status_code == 202
    assert response.json()["accepted"] == 100
    assert len(set(response.json()["submission_ids"])) == 100
    assert FormSubmission.objects.count() == 100
    assert Workflow.objects.filter(status="pending", trigger="webhook").count() == 100
    assert AuditEvent.objects.filter(action="submission.received").count() == 100


@pytest.mark.skipif(connection.vendor != "postgresql", reason="server-side prepared statements")
def test_the_webhook_statement_is_planned_once_per_connection(post_webhook, settings):
    # Planning the chained-CTE statement was half of its cost (docs/performance.md): from the
    # DB_PREPARE_THRESHOLD-th delivery on, the server runs the plan it prepared.
    threshold = connection.settings_dict["OPTIONS"]["prepare_threshold"]
    assert threshold == 5
    for n in range(threshold + 3):
        assert post_webhook(event_batch(1, first_object_id=100 + n)).status_code == 202
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), sum(generic_plans + custom_plans) FROM pg_prepared_statements "
            "WHERE statement LIKE %s",
            ['%jsonb_array_elements%INSERT INTO "lead_keys"%'],
        )
        prepared, plans_used = cursor.fetchone()
    assert prepared == 1
    assert plans_used >= 2  # the prepared statement ran again, unparsed


def test_a_redelivered_batch_is_acknowledged_as_duplicates(post_webhook):
    post_webhook(event_batch(100))
    redelivered = [{**event, "attemptNumber": 1} for event in event_batch(100)]

    response = post_webhook(redelivered)

    assert response.status_code == 202
    assert response.json() == {
        "accepted": 0,
        "duplicates": 100,
        "submission_ids": [],
        "joined": 0,
        "joined_leads": [],
        "workflows_started": 0,
        "workflow_ids": [],
        "ignored": 0,
        "applied": [],
        "refused": [],
    }
    assert FormSubmission.objects.count() == 100
    assert Workflow.objects.count() == 100


def test_a_batch_mixing_new_and_known_events_accepts_only_the_new(post_webhook):
    post_webhook(event_batch(2))

    response = post_webhook(event_batch(3))

    assert response.json()["accepted"] == 1
    assert response.json()["duplicates"] == 2
    assert Workflow.objects.count() == 3


@pytest.mark.parametrize(("email", "error"), [("not-an-email", "invalid email"), ("", "missing")])
def test_a_lead_without_a_valid_email_is_stored_with_a_pending_workflow(post_webhook, email, error):
    response = post_webhook(forms_body(email=email))

    assert response.status_code == 202
    submission = FormSubmission.objects.get()
    assert submission.email == "" and error in submission.email_error
    assert submission.workflows.get().status == "pending"
    assert error in AuditEvent.objects.get().reason


def test_overlong_fields_and_odd_json_are_kept_rather_than_refused(post_webhook):
    body = json.dumps(forms_body(company="C" * 500)).encode()
    body = body[:-1] + b', "nul": "a\\u0000b", "lone": "\\ud800", "huge": 1e400}'

    response = post_webhook(body)

    assert response.status_code == 202
    submission = FormSubmission.objects.get()
    assert submission.company == "C" * 300
    assert submission.raw_payload["nul"] == "a\ufffdb"
    assert submission.raw_payload["huge"] == "inf"


@pytest.mark.parametrize("path", [WEBHOOK_PATH, WEBHOOK_PATH + "/"])
def test_it_answers_with_and_without_a_trailing_slash(post_webhook, path):
    assert post_webhook(sample("forms-submission.json"), path=path).status_code == 202


def test_the_url_is_named():
    assert reverse("intake:hubspot-forms") == WEBHOOK_PATH


@pytest.mark.parametrize("version", ["v3", "v2", "v1"])
def test_a_query_with_encoded_characters_verifies_as_hubspot_signed_it(post_webhook, version):
    path = WEBHOOK_PATH + "?portalId=62515&next=%2Fthanks%3Fa%3D1&who=J%C3%B6rg%20%26%20co"

    response = post_webhook(sample("workflow-contact-v3.json"), path=path, version=version)

    assert response.status_code == 202
    # v1 signs the body only: its query parameters are not used (issue #13, item 3).
    assert FormSubmission.objects.get().portal_id == (None if version == "v1" else 62515)


def test_the_raw_request_line_from_gunicorn_is_what_gets_verified(post_webhook):
    raw = "/api/webhooks/hubspot/forms?next=%2Fa%20b"

    response = post_webhook(
        sample("forms-submission.json"),
        signed_uri=f"http://testserver{raw}",
        version="v2",
        RAW_URI=raw,
    )

    assert response.status_code == 202


def test_the_public_base_url_is_what_gets_verified(post_webhook, settings):
    settings.PUBLIC_BASE_URL = "https://leads.example.com"
    body = sample("forms-submission.json")

    internal = post_webhook(body, signed_uri=f"http://testserver{WEBHOOK_PATH}")
    public = post_webhook(body, signed_uri=f"https://leads.example.com{WEBHOOK_PATH}")

    assert (internal.status_code, public.status_code) == (401, 202)


@pytest.mark.parametrize(("trusted", "expected"), [(False, 401), (True, 202)])
def test_x_forwarded_host_counts_only_when_trusted(post_webhook, settings, trusted, expected):
    settings.USE_X_FORWARDED_HOST = trusted
    settings.ALLOWED_HOSTS = ["testserver", "leads.example.com"]

    response = post_webhook(
        sample("forms-submission.json"),
        signed_uri=f"http://leads.example.com{WEBHOOK_PATH}",
        headers={"X-Forwarded-Host": "leads.example.com"},
    )

    assert response.status_code == expected


def test_signatures_below_the_minimum_version_are_refused(post_webhook, webhook_settings, caplog):
    webhook_settings.WEBHOOK_MIN_SIGNATURE_VERSION = "v3"
    for version in ("v1", "v2"):
        response = post_webhook(event_batch(1), version=version)
        assert response.status_code == 401, version
        assert response.json() == {"error": "invalid signature"}
    refused = [r.reason for r in caplog.records if r.getMessage() == "Webhook refused"]
    assert refused == [f"{v} is below WEBHOOK_MIN_SIGNATURE_VERSION" for v in ("v1", "v2")]
    assert_nothing_stored()
    assert post_webhook(event_batch(1), version="v3").status_code == 202
    webhook_settings.WEBHOOK_MIN_SIGNATURE_VERSION = "v2"
    assert post_webhook(event_batch(1, first_object_id=1), version="v2").status_code == 202


def test_acceptance_is_logged_without_the_body_or_signature(post_webhook, caplog):
    with caplog.at_level(logging.INFO, logger="leadline.intake"):
        post_webhook(sample("forms-submission.json"))

    (record,) = [r for r in caplog.records if r.name == "leadline.intake"]
    assert record.getMessage() == "Webhook received"
    assert (record.accepted, record.duplicates, record.signature_version) == (1, 0, "v3")
    assert record.duration_ms >= 0
    assert "grace" not in caplog.text and SECRET not in caplog.text


# --- refused deliveries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bend", "reason"),
    [
        ({"secret": "not-the-secret"}, "bad_signature"),
        ({"timestamp_ms": int(time.time() * 1000) - 3_600_000}, "stale_timestamp"),
        ({"timestamp_ms": int(time.time() * 1000) + 3_600_000}, "future_timestamp"),
        ({"signed_uri": "http://testserver/somewhere/else"}, "bad_signature"),
        ({"version": "v2", "secret": "not-the-secret"}, "bad_signature"),
    ],
)
def test_a_bad_signature_is_refused_without_saying_why(post_webhook, caplog, bend, reason):
    response = post_webhook(sample("forms-submission.json"), **bend)

    assert response.status_code == 401
    assert response.json() == {"error": "invalid signature"}
    refused = [r for r in caplog.records if r.getMessage() == "Webhook refused"]
    assert (refused[0].status, refused[0].reason) == (401, reason)
    assert_nothing_stored()


def test_an_unsigned_request_is_refused(client, webhook_settings):
    response = client.post(
        WEBHOOK_PATH, data=sample("forms-submission.json"), content_type="application/json"
    )

    assert response.status_code == 401
    assert_nothing_stored()


def test_a_body_changed_after_signing_is_refused(client, webhook_settings):
    body = sample("forms-submission.json")
    headers = signature_headers(body=body, uri=f"http://testserver{WEBHOOK_PATH}")

    response = client.post(
        WEBHOOK_PATH, data=body + b" ", content_type="application/json", headers=headers
    )

    assert response.status_code == 401


@pytest.mark.parametrize(
    "body",
    [b"", b"{not json", b"[]", b'{"hello": "world"}', b'"a string"', b"\xff\xfe"],
)
def test_a_malformed_or_unknown_body_is_a_400_and_kept_refused_for_review(post_webhook, body):
    # Signed, so genuine; HubSpot workflows never retry a 400, so the kept row is the only
    # copy. A redelivery of the same body keeps no second one.
    response = post_webhook(body)
    post_webhook(body)

    assert response.status_code == 400
    assert response.json()["error"].endswith("(the body is kept, refused, for review)")
    assert_nothing_stored()
    kept = NonLeadDelivery.objects.get()
    assert (kept.outcome, kept.signature_version) == ("refused", "v3")
    assert kept.reason and kept.reason in response.json()["error"]
    assert kept.raw_payload == {"body_text": body.decode("utf-8", "replace")}


def test_an_unsigned_unknown_body_is_not_kept(client, webhook_settings):
    response = client.post(WEBHOOK_PATH, data=b"{}", content_type="application/json")

    assert response.status_code == 401
    assert not NonLeadDelivery.objects.exists()


def test_losing_the_database_while_keeping_a_refused_body_is_a_503(post_webhook, monkeypatch):
    def fail(**_kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("intake.views.refused_body_keep", fail)
    response = post_webhook(b'{"hello": "world"}')

    assert response.status_code == 503, "HubSpot delivers again once the database is back"
    assert response["Retry-After"]


def test_an_unknown_shape_is_told_which_shapes_are_accepted(post_webhook):
    response = post_webhook({"hello": "world"})

    assert "Forms submission" in response.json()["error"]


@pytest.mark.parametrize("field", ["subscriptionType", "objectId"])
def test_a_nul_in_an_event_that_is_not_a_lead_is_kept_not_a_500(post_webhook, field):
    # Found by the fuzz test below: a refused event's type went into a text column as sent.
    refused = {"subscriptionType": "bad\u0000type"}  # no eventId: refused, and kept
    ignored = {**event_batch(1)[0], "subscriptionType": "deal.creation", field: "x\u0000y"}
    response = post_webhook([refused, ignored])

    assert response.status_code == 202, response.content
    assert response.json()["refused"][0]["index"] == 0
    kept = NonLeadDelivery.objects.all()
    assert len(kept) == 2, "both events kept"
    assert "bad\ufffdtype" in {row.event_type for row in kept}
    assert not any("\x00" in row.event_type + row.object_id + row.reason for row in kept)


def test_more_than_100_events_are_refused(post_webhook):
    assert post_webhook(event_batch(101)).status_code == 400
    assert_nothing_stored()


def test_a_body_over_the_keep_limit_is_refused_before_it_is_read(post_webhook, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 2048
    settings.WEBHOOK_KEEP_OVERSIZE_BYTES = 3000
    body = json.dumps(forms_body(message="x" * 4096)).encode()

    response = post_webhook(body)

    assert response.status_code == 413
    assert response.json() == {"error": "body larger than 2048 bytes"}
    assert_nothing_stored()
    assert not NonLeadDelivery.objects.exists()


def test_a_signed_oversized_body_is_kept_for_review_and_still_refused(post_webhook, settings):
    """HubSpot workflows never retry a 4xx, and a contact-based workflow's body carries every
    property's history: a genuine body over WEBHOOK_MAX_BODY_BYTES is not processed, but it
    is kept, refused, where an operator finds it (admin, Non-lead deliveries)."""
    settings.WEBHOOK_MAX_BODY_BYTES = 2048
    body = json.dumps(forms_body(message="x" * 4096)).encode()

    response = post_webhook(body)

    assert response.status_code == 413
    assert "kept, refused, for review" in response.json()["error"]
    assert_nothing_stored()
    [kept] = NonLeadDelivery.objects.all()
    assert kept.outcome == "refused" and kept.signature_version == "v3"
    assert f"the body is {len(body)} bytes, over WEBHOOK_MAX_BODY_BYTES (2048)" in kept.reason
    assert kept.raw_payload["body_text"] == body.decode()
    assert post_webhook(body).status_code == 413  # HubSpot would not retry; a replay is one row
    assert NonLeadDelivery.objects.count() == 1


@pytest.mark.parametrize("how", ["wrong secret", "unsigned"])
def test_an_oversized_body_not_signed_by_hubspot_is_refused_and_not_kept(
    post_webhook, settings, how
):
    settings.WEBHOOK_MAX_BODY_BYTES = 2048
    body = json.dumps(forms_body(message="x" * 4096)).encode()
    if how == "unsigned":
        response = post_webhook(body, headers={"X-HubSpot-Signature-v3": ""})
    else:
        response = post_webhook(body, secret="not-the-secret")  # read, then refused

    assert response.status_code == 413
    assert response.json() == {"error": "body larger than 2048 bytes"}
    assert not NonLeadDelivery.objects.exists()


@pytest.mark.parametrize("how", ["unsigned", "stale v3"])
def test_an_oversized_body_without_a_plausible_signature_is_never_read(
    post_webhook, settings, monkeypatch, how
):
    """Up to 8 MiB is read only for a request that looks signed, so anyone without the secret
    and a fresh timestamp gets the 413 for the declared length alone."""
    settings.WEBHOOK_MAX_BODY_BYTES = 2048

    def read(request):
        raise AssertionError("the body was read")

    monkeypatch.setattr("intake.views._read_body", read)
    body = json.dumps(forms_body(message="x" * 4096)).encode()
    if how == "unsigned":
        response = post_webhook(body, headers={"X-HubSpot-Signature-v3": ""})
    else:
        response = post_webhook(body, timestamp_ms=int(time.time() * 1000) - 3_600_000)

    assert response.status_code == 413
    assert response.json() == {"error": "body larger than 2048 bytes"}


def test_the_webhooks_own_limits_decide_not_djangos_upload_limit(post_webhook, settings):
    """Django's DATA_UPLOAD_MAX_MEMORY_SIZE stays where it is for every other view; the
    webhook reads what its own limits allow."""
    settings.WEBHOOK_MAX_BODY_BYTES = 10_000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = post_webhook(json.dumps(forms_body(message="x" * 4096)).encode())

    assert response.status_code == 202, response.content
    assert FormSubmission.objects.count() == 1


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_a_non_json_content_type_is_a_415(post_webhook, content_type):
    response = post_webhook(sample("forms-submission.json"), content_type=content_type)

    assert response.status_code == 415
    assert_nothing_stored()


def test_json_with_a_charset_parameter_is_accepted(post_webhook):
    response = post_webhook(
        sample("forms-submission.json"), content_type="application/json; charset=utf-8"
    )

    assert response.status_code == 202


@pytest.mark.parametrize("method", ["get", "put", "delete", "head", "options"])
def test_it_rejects_other_methods_with_an_allow_header(client, webhook_settings, method):
    response = getattr(client, method)(WEBHOOK_PATH)

    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_without_a_secret_it_answers_503(post_webhook, settings):
    settings.HUBSPOT_CLIENT_SECRET = ""

    response = post_webhook(sample("forms-submission.json"))

    assert response.status_code == 503
    assert response.json() == {"error": "webhook secret not configured"}
    assert_nothing_stored()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["one statement", "three statements"])
def test_losing_the_database_mid_ingest_is_a_503_and_keeps_nothing(post_webhook, monkeypatch, path):
    if connection.vendor != "postgresql":
        pytest.skip("terminates a PostgreSQL backend")
    if path == "three statements":  # the portable path, run here on PostgreSQL
        monkeypatch.setattr(services, "_store_in_one_statement", services._store_with_the_orm)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend_pid,) = cursor.fetchone()

    def terminate_around_the_submission_insert(execute, sql, params, many, context):
        stores = "form_submissions" in sql and "INSERT" in sql
        if stores and path == "one statement":  # one statement: no moment inside it
            _terminate_backend(backend_pid)
        result = execute(sql, params, many, context)
        if stores:  # three statements: the submission rows are in, the rest is not
            _terminate_backend(backend_pid)
        return result

    with connection.execute_wrapper(terminate_around_the_submission_insert):
        response = post_webhook(event_batch(5))
    connection.close()

    assert response.status_code == 503
    assert response.json() == {"error": "storage unavailable, retry"}
    assert int(response["Retry-After"]) > 0
    assert_nothing_stored()


def _terminate_backend(pid: int) -> None:
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            for _ in range(100):  # wait until it is really gone, so the next query fails
                cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
                if cursor.fetchone() is None:
                    return
                time.sleep(0.05)
    finally:
        other.close()


# --- nothing is published on the request (issue #16: the outbox relay publishes) -------------


def test_the_request_publishes_nothing_and_leaves_its_workflows_in_the_outbox(
    post_webhook, broker_queue, django_capture_on_commit_callbacks
):
    from workflows.relay import relay_batch, unpublished

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_webhook(event_batch(3))

    assert response.status_code == 202
    assert callbacks == []  # no publish waits for the commit either
    assert queued_tasks(broker_queue) == []
    workflow_ids = sorted(Workflow.objects.values_list("pk", flat=True))
    assert sorted(unpublished().values_list("pk", flat=True)) == workflow_ids

    assert relay_batch().published == 3  # what the relay process does
    assert sorted(queued_tasks(broker_queue)) == sorted(
        ("workflows.process_workflow", f"[{pk}]") for pk in workflow_ids
    )


def test_a_big_batch_is_relayed_as_one_fan_out_message_that_a_worker_expands(
    post_webhook, broker_queue
):
    from workflows import tasks
    from workflows.relay import relay_batch
    from workflows.services import FANOUT_ABOVE

    response = post_webhook(event_batch(FANOUT_ABOVE + 2))
    assert response.status_code == 202
    assert queued_tasks(broker_queue) == []
    assert relay_batch().published == FANOUT_ABOVE + 2
    workflow_ids = list(Workflow.objects.order_by("created_at", "pk").values_list("pk", flat=True))
    assert queued_tasks(broker_queue) == [("workflows.enqueue_workflows", f"[{workflow_ids}]")]
    broker_queue.delete("celery")

    assert tasks.enqueue_workflows(workflow_ids) == len(workflow_ids)  # what the worker runs
    assert queued_tasks(broker_queue) == [
        ("workflows.process_workflow", f"[{pk}]") for pk in workflow_ids
    ]


def test_duplicates_add_nothing_to_the_outbox(post_webhook, broker_queue):
    from workflows.relay import relay_batch, unpublished

    post_webhook(event_batch(2))
    relay_batch()
    broker_queue.delete("celery")

    post_webhook(event_batch(2))

    assert not unpublished().exists()
    assert relay_batch().claimed == 0
    assert queued_tasks(broker_queue) == []


def test_with_the_broker_down_it_still_answers_202_quickly_and_keeps_work_in_the_outbox(
    post_webhook, broker_down
):
    from workflows.relay import relay_batch, unpublished

    started = time.monotonic()
    response = post_webhook(event_batch(3))
    elapsed = time.monotonic() - started

    assert response.status_code == 202
    assert elapsed < 2.5
    assert Workflow.objects.filter(status="pending").count() == 3
    result = relay_batch()  # the relay cannot publish either: nothing is stamped
    assert (result.claimed, result.published, result.broker_failed) == (3, 0, True)
    assert unpublished().count() == 3


# --- robustness -------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
FIELD = st.fixed_dictionaries(
    {"name": st.sampled_from(["email", "firstname", "company", "phone", "message"]) | st.text()},
    optional={"value": JSON_VALUES},
)
EVENT = st.fixed_dictionaries(
    {},
    optional={
        "eventId": st.integers(),
        "portalId": st.integers() | st.text(),
        "objectId": st.integers() | st.text(),
        "occurredAt": st.integers() | st.text(),
        "subscriptionType": st.text(),
        "eventType": st.text(),
    },
)
BODIES = st.one_of(
    st.binary(max_size=300),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.lists(EVENT, max_size=5).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"fields": st.lists(FIELD, max_size=5)},
        optional={"portalId": JSON_VALUES, "submittedAt": JSON_VALUES, "context": JSON_VALUES},
    ).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"properties": st.dictionaries(st.text(), JSON_VALUES, max_size=5)},
        optional={"id": JSON_VALUES, "form-submissions": JSON_VALUES},
    ).map(lambda v: json.dumps(v).encode()),
    st.sampled_from([sample("events-batch.json"), sample("forms-submission.json")]),
)


@hypothesis_settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["POST"] * 6 + ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "text/plain", ""]
    )
    | st.text(max_size=40),
    body=BODIES,
    signing=st.sampled_from(["v3", "v2", "v1", "none", "garbage"]),
    query=st.sampled_from(["", "?portalId=1", "?formId=%E2%82%AC&portalId=x"]),
    junk_headers=st.dictionaries(
        st.sampled_from(
            ["X-HubSpot-Signature", "X-HubSpot-Signature-Version", "X-HubSpot-Request-Timestamp"]
        ),
        st.text(max_size=30),
        max_size=2,
    ),
)
def test_no_request_makes_it_fail_with_a_500(
    client, webhook_settings, method, content_type, body, signing, query, junk_headers
):
    path = WEBHOOK_PATH + query
    headers = dict(junk_headers) if signing == "garbage" else {}
    if signing in ("v3", "v2", "v1"):
        headers = signature_headers(
            body=body, uri=f"http://testserver{path}", version=signing, method=method
        )
    with transaction.atomic():
        response = client.generic(
            method,
            path,
            data=body,
            content_type=content_type,
            **{f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()},
        )
        transaction.set_rollback(True)

    assert response.status_code in {202, 400, 401, 405, 413, 415}
