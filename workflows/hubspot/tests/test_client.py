"""The real client against the sandbox over real sockets, and the throttle on real Redis."""

import logging
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from workflows.hubspot.client import (
    HubSpotClient,
    HubSpotPaused,
    PermanentHubSpotError,
    TransientHubSpotError,
    client_from_settings,
    path_segment,
    seconds_until_daily_reset,
    task_marker_token,
)
from workflows.hubspot.sandbox import SandboxServer
from workflows.hubspot.throttle import ThrottleTimeout, TokenBucket

AUTH = {"Authorization": "Bearer sandbox-token"}


def make_client(sandbox: SandboxServer, **kwargs) -> HubSpotClient:
    kwargs.setdefault("general_rate", 1000.0)
    kwargs.setdefault("search_rate", 1000.0)
    return HubSpotClient(base_url=sandbox.url, token=sandbox.token, **kwargs)


@pytest.fixture
def client(sandbox):
    with make_client(sandbox) as client:
        yield client


def test_search_finds_contact_by_email(sandbox, client):
    seeded = sandbox.seed_contact(email="ada@example.com", firstname="Ada")

    found = client.search_contact_by_email("ada@example.com")

    assert found["id"] == seeded["id"]
    assert found["properties"]["firstname"] == "Ada"
    sent = sandbox.requests("contacts.search")[0].json
    assert sent["filterGroups"][0]["filters"] == [
        {"propertyName": "email", "operator": "EQ", "value": "ada@example.com"}
    ]


def test_search_for_unknown_email_returns_none(client):
    assert client.search_contact_by_email("nobody@example.com") is None


def test_get_contact_asks_for_named_properties(sandbox, client):
    seeded = sandbox.seed_contact(email="ada@example.com", firstname="Ada", lastname="L")

    contact = client.get_contact(seeded["id"], properties=["email", "lastname"])

    assert contact["properties"]["lastname"] == "L"
    assert sandbox.requests("contacts.get")[0].query == {"properties": ["email", "lastname"]}


def test_get_missing_contact_is_permanent_not_found(client):
    with pytest.raises(PermanentHubSpotError) as caught:
        client.get_contact("999999")

    assert caught.value.status == 404
    assert caught.value.category == "OBJECT_NOT_FOUND"
    assert not caught.value.retryable


def test_a_new_contact_has_no_owner_without_an_owner_rule(client):
    contact = client.create_contact({"email": "new@example.com", "firstname": "New"})

    assert contact["id"]
    assert "hubspot_owner_id" not in contact["properties"]


def test_an_owner_rule_gives_a_new_contact_its_owner(sandbox, client):
    sandbox.configure(owner_rules=[{"email_domain": "acme.test", "owner_id": "1001"}])

    owned = client.create_contact({"email": "new@acme.test"})
    unowned = client.create_contact({"email": "new@other.test"})

    assert client.get_contact(owned["id"])["properties"]["hubspot_owner_id"] == "1001"
    assert client.get_contact(unowned["id"])["properties"]["hubspot_owner_id"] is None


def test_creating_existing_contact_returns_the_existing_one(sandbox, client):
    seeded = sandbox.seed_contact(email="ada@example.com")

    contact = client.create_contact({"email": "ADA@example.com"})

    assert contact["id"] == seeded["id"]
    assert [(r.endpoint, r.status) for r in sandbox.requests()] == [
        ("contacts.create", 409),
        ("contacts.get", 200),
    ]


def test_task_is_associated_to_contact_with_type_204_and_owner(sandbox, client):
    contact = sandbox.seed_contact(email="ada@example.com")
    due = datetime(2030, 1, 2, 9, 30, tzinfo=UTC)

    task = client.create_task(
        contact_id=contact["id"],
        owner_id="1001",
        subject="Call Ada",
        body="She asked for a demo.",
        due_at=due,
        marker="lead-42/follow-up",
    )

    assert task["id"]
    sent = sandbox.requests("tasks.create")[0].json
    assert sent["associations"] == [
        {
            "to": {"id": contact["id"]},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}],
        }
    ]
    assert sent["properties"]["hubspot_owner_id"] == "1001"
    assert sent["properties"]["hs_timestamp"] == "2030-01-02T09:30:00.000Z"
    assert task_marker_token("lead-42/follow-up") in sent["properties"]["hs_task_body"]


def test_task_is_found_again_by_its_marker(sandbox, client):
    contact = sandbox.seed_contact(email="ada@example.com")
    due = datetime.now(UTC) + timedelta(days=1)
    for marker in ("lead-1", "lead-2"):
        client.create_task(
            contact_id=contact["id"],
            owner_id=None,
            subject=marker,
            body="b",
            due_at=due,
            marker=marker,
        )

    assert client.find_task_by_marker("lead-2")["properties"]["hs_task_subject"] == "lead-2"
    assert client.find_task_by_marker("lead-3") is None
    sent = sandbox.requests("tasks.search")[0].json["filterGroups"][0]["filters"][0]
    assert sent["operator"] == "CONTAINS_TOKEN"
    assert sent["propertyName"] == "hs_task_body"


def test_task_due_date_must_be_timezone_aware(sandbox, client):
    with pytest.raises(ValueError, match="aware"):
        client.create_task(
            contact_id="1",
            owner_id=None,
            subject="s",
            body="b",
            due_at=datetime(2030, 1, 1),
            marker="m",
        )
    assert sandbox.requests() == []


def test_note_is_associated_to_contact_with_type_202(sandbox, client):
    contact = sandbox.seed_contact(email="ada@example.com")

    note = client.create_note(contact_id=contact["id"], body="Form submitted", marker="wf-1")

    assert note["properties"]["hs_note_body"].startswith("Form submitted\n\nLeadline reference: ")
    assert client.find_note_by_marker("wf-1")["id"] == note["id"]
    assert client.find_note_by_marker("wf-2") is None
    sent = sandbox.requests("notes.create")[0].json
    assert sent["associations"][0]["types"][0]["associationTypeId"] == 202


def test_owner_lookup(client):
    assert client.get_owner("1001")["email"] == "avery@example.com"
    assert client.get_owner("4040") is None


def test_a_deactivated_owner_is_found_by_asking_again_with_archived_true(sandbox, client):
    sandbox.seed_owner(id="1003", email="gone@example.com", firstName="Gale", archived=True)

    owner = client.get_owner("1003")

    assert owner is not None and owner["archived"] is True
    assert (owner["firstName"], owner["email"]) == ("Gale", "gone@example.com")
    asked = sandbox.requests("owners.get")
    assert [(r.query, r.status) for r in asked] == [({}, 404), ({"archived": ["true"]}, 200)]
    assert client.get_owner("1001")["archived"] is False  # an active owner: one call
    assert len(sandbox.requests("owners.get")) == 3


def test_server_error_is_transient(sandbox, client):
    sandbox.set_faults({"contacts.search": {"kind": "status", "status": 500, "times": 1}})

    with pytest.raises(TransientHubSpotError) as caught:
        client.search_contact_by_email("ada@example.com")

    assert caught.value.status == 500
    assert caught.value.retryable
    assert client.search_contact_by_email("ada@example.com") is None


def test_bad_request_is_permanent_and_keeps_hubspots_message(sandbox, client):
    message = "Property values were not valid: hs_task_priority"
    sandbox.set_faults({"tasks.create": {"kind": "status", "status": 400, "message": message}})
    contact = sandbox.seed_contact(email="ada@example.com")

    with pytest.raises(PermanentHubSpotError) as caught:
        client.create_task(
            contact_id=contact["id"],
            owner_id=None,
            subject="s",
            body="b",
            due_at=datetime.now(UTC),
            marker="m",
        )

    assert caught.value.status == 400
    assert caught.value.message == message
    assert caught.value.category == "VALIDATION_ERROR"


def test_invalid_email_is_permanent(client):
    with pytest.raises(PermanentHubSpotError, match="INVALID_EMAIL"):
        client.create_contact({"email": "not-an-email"})


def test_wrong_token_is_permanent(sandbox):
    client = HubSpotClient(base_url=sandbox.url, token="wrong")
    with pytest.raises(PermanentHubSpotError) as caught:
        client.get_owner("1001")
    assert caught.value.status == 401
    assert caught.value.category == "INVALID_AUTHENTICATION"


def test_read_timeout_is_transient(sandbox):
    sandbox.set_faults({"owners.get": {"kind": "timeout", "seconds": 1.5, "times": 1}})

    with make_client(sandbox, timeout=(1, 0.3)) as client:
        started = time.monotonic()
        with pytest.raises(TransientHubSpotError) as caught:
            client.get_owner("1001")

    assert caught.value.category == "TIMEOUT"
    assert time.monotonic() - started < 1.2


def test_dropped_connection_is_transient(sandbox, client):
    sandbox.set_faults(
        {"owners.get": {"kind": "timeout", "seconds": 0, "then": "close", "times": 1}}
    )

    with pytest.raises(TransientHubSpotError) as caught:
        client.get_owner("1001")

    assert caught.value.category == "CONNECTION_ERROR"


def test_refused_connection_is_transient(sandbox):
    url = sandbox.url
    sandbox.stop()

    with HubSpotClient(base_url=url, token="t") as client, pytest.raises(TransientHubSpotError):
        client.get_owner("1001")


def test_malformed_json_is_transient(sandbox, client):
    sandbox.set_faults({"owners.get": {"kind": "malformed", "times": 1}})

    with pytest.raises(TransientHubSpotError) as caught:
        client.get_owner("1001")

    assert caught.value.category == "MALFORMED_RESPONSE"


@pytest.mark.parametrize(("status", "reason"), [(502, "Bad Gateway"), (503, "Service Unavailable")])
def test_an_html_error_page_is_transient_and_named_by_its_status(sandbox, client, status, reason):
    """A proxy in front of HubSpot answers an outage with an HTML page, not HubSpot's JSON
    error: still a retry later, named by the HTTP reason, never a permanent failure."""
    sandbox.set_faults({"owners.get": {"kind": "html", "status": status, "times": 1}})

    with pytest.raises(TransientHubSpotError) as caught:
        client.get_owner("1001")

    assert (caught.value.status, caught.value.message) == (status, reason)
    assert str(caught.value) == f"HubSpot {status}: {reason}"  # no empty category in the text
    assert client.get_owner("1001")["id"] == "1001"  # the next call gets HubSpot's answer


def test_an_html_page_on_a_4xx_is_permanent_with_its_reason(sandbox, client):
    sandbox.set_faults({"owners.get": {"kind": "html", "status": 403, "times": 1}})

    with pytest.raises(PermanentHubSpotError) as caught:
        client.get_owner("1001")

    assert (caught.value.status, str(caught.value)) == (403, "HubSpot 403: Forbidden")


def test_429_pauses_the_next_call_for_retry_after(sandbox, client):
    sandbox.set_faults({"owners.get": {"kind": "status", "status": 429, "retry_after": 1}})

    with pytest.raises(TransientHubSpotError) as caught:
        client.get_owner("1001")
    assert caught.value.retry_after == 1.0
    assert caught.value.category == "RATE_LIMITS"

    started = time.monotonic()
    client.create_contact({"email": "later@example.com"})
    assert time.monotonic() - started >= 0.9


def test_429_pause_reaches_another_process_through_redis(sandbox, redis_url):
    prefix = f"test:{uuid.uuid4()}"
    sandbox.set_faults({"owners.get": {"kind": "status", "status": 429, "retry_after": 0.5}})
    first = make_client(sandbox, throttle=TokenBucket(redis_url, prefix=prefix))
    second = make_client(sandbox, throttle=TokenBucket(redis_url, prefix=prefix))

    with pytest.raises(TransientHubSpotError):
        first.get_owner("1001")
    started = time.monotonic()
    second.create_contact({"email": "later@example.com"})

    assert time.monotonic() - started >= 0.4


def test_search_misses_a_fresh_contact_until_the_index_catches_up(sandbox, client):
    sandbox.configure(index_lag_seconds=0.3)
    created = client.create_contact({"email": "fresh@example.com"})

    assert client.search_contact_by_email("fresh@example.com") is None
    time.sleep(0.35)
    assert client.search_contact_by_email("fresh@example.com")["id"] == created["id"]


def test_throttled_burst_stays_under_an_enforced_limit(sandbox):
    sandbox.configure(rate_limit=10, rate_limit_interval_ms=500)  # 20 calls/s

    with make_client(sandbox, general_rate=15.0) as client:
        started = time.monotonic()
        for _ in range(20):
            client.get_owner("1001")

    assert time.monotonic() - started >= 1.1
    assert {r.status for r in sandbox.requests()} == {200}


def test_429_from_a_budget_spent_elsewhere_is_transient(sandbox, client):
    sandbox.configure(rate_limit=3, rate_limit_interval_ms=2000)
    for _ in range(3):  # another app on the same private-app budget
        requests.get(f"{sandbox.url}/crm/v3/owners/1001", headers=AUTH, timeout=2)

    with pytest.raises(TransientHubSpotError) as caught:
        client.get_owner("1001")

    assert caught.value.status == 429
    assert caught.value.category == "RATE_LIMITS"
    assert caught.value.retry_after == 1.0  # HubSpot sent no Retry-After


def test_low_remaining_header_slows_the_next_call(sandbox, client):
    sandbox.configure(rate_limit=10, rate_limit_interval_ms=2000)
    for _ in range(7):
        requests.get(f"{sandbox.url}/crm/v3/owners/1001", headers=AUTH, timeout=2)

    client.get_owner("1001")  # Remaining: 2 -> pause 2 slots of 0.2 s
    started = time.monotonic()
    client.get_owner("1001")

    assert time.monotonic() - started >= 0.35


def test_log_lines_never_carry_the_token_or_bodies(sandbox, client, caplog):
    caplog.set_level(logging.INFO, logger="leadline.hubspot")

    client.create_contact({"email": "secret-body@example.com"})

    assert "contacts.create" in caplog.text
    assert "status=201" in caplog.text
    assert "duration_ms=" in caplog.text
    assert sandbox.token not in caplog.text
    assert "secret-body" not in caplog.text
    assert all("authorization" not in k.lower() for k in sandbox.requests()[0].headers)


def test_client_from_settings_needs_a_token(redis_url):
    from django.test import override_settings

    with override_settings(HUBSPOT_ACCESS_TOKEN=""):
        assert client_from_settings() is None
    with override_settings(
        HUBSPOT_ACCESS_TOKEN="pat-1",
        HUBSPOT_API_BASE_URL="http://127.0.0.1:9",
        CELERY_BROKER_URL=redis_url,
        HUBSPOT_RATE_LIMIT_PER_10S=190,
    ):
        client = client_from_settings()
    assert client.base_url == "http://127.0.0.1:9"
    assert client.general_rate == 19.0
    assert client.throttle.shared
    with override_settings(HUBSPOT_ACCESS_TOKEN="pat-1", CELERY_BROKER_URL="filesystem://"):
        assert not client_from_settings().throttle.shared
    with override_settings(HUBSPOT_ACCESS_TOKEN="pat-1", CELERY_BROKER_URL="filesystem://"):
        # every run of a worker gets a client; they must all draw on the process's one budget
        assert client_from_settings().throttle is client_from_settings().throttle


# --- throttle ------------------------------------------------------------------------------


def test_two_processes_share_one_redis_budget(redis_url):
    prefix = f"test:{uuid.uuid4()}"
    buckets = [TokenBucket(redis_url, prefix=prefix), TokenBucket(redis_url, prefix=prefix)]
    assert all(b.shared for b in buckets)

    def take(bucket: TokenBucket) -> None:
        for _ in range(7):
            bucket.acquire("crm", rate=20, capacity=5, timeout=5)

    started = time.monotonic()
    threads = [threading.Thread(target=take, args=(b,)) for b in buckets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    buckets[0].acquire("crm", rate=20, capacity=5, timeout=5)

    # 15 calls, 5 from the full bucket, 10 more at 20/s.
    assert time.monotonic() - started >= 0.45


def test_pause_in_one_process_holds_back_the_other(redis_url):
    prefix = f"test:{uuid.uuid4()}"
    TokenBucket(redis_url, prefix=prefix).pause("crm", 0.4)

    waited = TokenBucket(redis_url, prefix=prefix).acquire("crm", rate=10, capacity=1, timeout=2)

    assert waited >= 0.35


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process"])
def test_acquire_gives_up_at_once_when_the_wait_exceeds_the_timeout(redis_url, shared):
    bucket = TokenBucket(redis_url if shared else "filesystem://", prefix=f"test:{uuid.uuid4()}")
    assert bucket.shared is shared
    bucket.acquire("crm", rate=1, capacity=1, timeout=0)

    started = time.monotonic()
    with pytest.raises(ThrottleTimeout):
        bucket.acquire("crm", rate=1, capacity=1, timeout=0.5)
    assert time.monotonic() - started < 0.1


def test_in_process_bucket_paces_threads():
    bucket = TokenBucket(None)
    started = time.monotonic()

    for _ in range(6):
        bucket.acquire("crm", rate=20, capacity=1, timeout=1)
    bucket.pause("crm", 0.2)
    bucket.acquire("crm", rate=20, capacity=1, timeout=1)

    assert time.monotonic() - started >= 0.25 + 0.2


def test_unreachable_redis_is_a_transient_error(sandbox):
    throttle = TokenBucket("redis://127.0.0.1:1/0", prefix=f"test:{uuid.uuid4()}")

    with pytest.raises(TransientHubSpotError) as caught:
        make_client(sandbox, throttle=throttle).get_owner("1001")

    assert caught.value.category == "THROTTLE_UNAVAILABLE"
    assert sandbox.requests() == []


# --- HubSpot's error classes (https://developers.hubspot.com/docs/api-reference/error-handling)


def test_a_423_locked_is_transient_with_a_two_second_wait(sandbox):
    sandbox.add_fault("owners.get", {"kind": "status", "status": 423, "times": 1})

    with pytest.raises(TransientHubSpotError) as caught:
        make_client(sandbox).get_owner("1001")

    assert caught.value.status == 423 and caught.value.retry_after == 2.0


def test_a_477_migration_in_progress_is_transient_after_its_retry_after(sandbox):
    sandbox.add_fault("owners.get", {"kind": "status", "status": 477, "retry_after": 7, "times": 1})

    with pytest.raises(TransientHubSpotError) as caught:
        make_client(sandbox).get_owner("1001")

    assert caught.value.status == 477 and caught.value.retry_after == 7.0


@pytest.mark.parametrize("status", [502, 503, 504, 521])
def test_gateway_errors_are_transient(sandbox, status):
    sandbox.add_fault("owners.get", {"kind": "status", "status": status, "times": 1})

    with pytest.raises(TransientHubSpotError):
        make_client(sandbox).get_owner("1001")


def test_a_daily_429_halts_every_call_of_every_client_sharing_the_throttle(sandbox, redis_url):
    throttle = TokenBucket(redis_url, prefix=f"test:{uuid.uuid4()}")
    first = make_client(sandbox, throttle=throttle, daily_pause=lambda: 30.0)
    other = make_client(sandbox, throttle=throttle)  # another worker process, same Redis
    sandbox.add_fault("owners.get", {"kind": "status", "status": 429, "policy": "DAILY"})

    with pytest.raises(HubSpotPaused) as caught:
        first.get_owner("1001")
    assert caught.value.retry_after == 30.0
    calls = len(sandbox.requests())

    with pytest.raises(HubSpotPaused) as halted:
        other.get_contact("1")
    assert 29 < halted.value.retry_after <= 30
    assert len(sandbox.requests()) == calls  # nothing went out during the halt
    assert 29 < throttle.halted_for() <= 30


def test_the_daily_reset_is_midnight_in_the_account_time_zone():
    evening = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)

    assert seconds_until_daily_reset("UTC", evening) == 90 * 60
    # 22:30 UTC is 17:30 in New York (EST): 6.5 hours to its midnight.
    assert seconds_until_daily_reset("America/New_York", evening) == 6.5 * 3600


def test_every_path_value_is_quoted_so_it_cannot_reach_another_endpoint(sandbox):
    client = make_client(sandbox)

    with pytest.raises(PermanentHubSpotError):
        client.get_contact("1/../../owners/1001")

    [request] = sandbox.requests()
    assert request.endpoint == "contacts.get"
    assert path_segment("a/b?c#d") == "a%2Fb%3Fc%23d"


def test_the_proxy_environment_is_honoured_as_read_when_the_client_is_made(sandbox, monkeypatch):
    # requests would re-read these on every call; the client reads them once (issue #16).
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # discard port: nothing listens
    with make_client(sandbox) as proxied, pytest.raises(TransientHubSpotError):
        proxied.search_contact_by_email("ada@example.com")

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with make_client(sandbox) as direct:
        monkeypatch.delenv("NO_PROXY")  # read once: later changes do not reach this client
        assert direct.search_contact_by_email("ada@example.com") is None
    assert len(sandbox.requests("contacts.search")) == 1
