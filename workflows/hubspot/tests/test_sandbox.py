"""The HubSpot sandbox, spoken to with plain HTTP as any process would."""

import threading
import time

import pytest
import requests

AUTH = {"Authorization": "Bearer sandbox-token"}


def call(sandbox, method: str, path: str, **kwargs) -> requests.Response:
    kwargs.setdefault("headers", AUTH)
    return requests.request(method, sandbox.url + path, timeout=5, **kwargs)


def search_body(prop: str, value: str, operator: str = "EQ") -> dict:
    return {
        "filterGroups": [
            {"filters": [{"propertyName": prop, "operator": operator, "value": value}]}
        ]
    }


def test_it_rejects_a_missing_or_wrong_token(sandbox):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "sandbox-token"}):
        response = call(sandbox, "GET", "/crm/v3/owners/1001", headers=headers)
        assert response.status_code == 401
        assert response.json()["category"] == "INVALID_AUTHENTICATION"


def test_without_a_configured_token_it_accepts_any_bearer(sandbox):
    sandbox.configure(token=None)

    assert call(sandbox, "GET", "/crm/v3/owners/1001", headers={"Authorization": "Bearer x"}).ok
    assert (
        call(
            sandbox, "GET", "/crm/v3/owners/1001", headers={"Authorization": "Bearer "}
        ).status_code
        == 401
    )


def test_every_answer_carries_rate_limit_headers(sandbox):
    for response in (
        call(sandbox, "GET", "/crm/v3/owners/1001"),
        call(sandbox, "GET", "/crm/v3/owners/1001", headers={}),
        call(sandbox, "GET", "/crm/v3/objects/contacts/1"),
    ):
        assert response.headers["X-HubSpot-RateLimit-Max"] == "100"
        assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert int(response.headers["X-HubSpot-RateLimit-Daily-Remaining"]) > 0
    assert response.headers["X-HubSpot-RateLimit-Remaining"] == "98"


def test_enforced_rolling_limit_answers_429_then_recovers(sandbox):
    sandbox.configure(rate_limit=2, rate_limit_interval_ms=300)

    statuses = [call(sandbox, "GET", "/crm/v3/owners/1001").status_code for _ in range(3)]
    refused = call(sandbox, "GET", "/crm/v3/owners/1001")
    time.sleep(0.35)

    assert statuses == [200, 200, 429]
    assert refused.json()["errorType"] == "RATE_LIMIT"
    assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert refused.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert call(sandbox, "GET", "/crm/v3/owners/1001").status_code == 200


def test_contact_lifecycle(sandbox):
    created = call(
        sandbox,
        "POST",
        "/crm/v3/objects/contacts",
        json={"properties": {"email": "a@example.com", "firstname": "A"}},
    )
    assert created.status_code == 201
    contact_id = created.json()["id"]

    got = call(sandbox, "GET", f"/crm/v3/objects/contacts/{contact_id}?properties=firstname")
    assert got.json()["properties"]["firstname"] == "A"
    assert got.json()["archived"] is False

    found = call(
        sandbox,
        "POST",
        "/crm/v3/objects/contacts/search",
        json=search_body("email", "A@example.com"),
    )
    assert found.json()["total"] == 1
    assert found.json()["results"][0]["id"] == contact_id

    duplicate = call(
        sandbox, "POST", "/crm/v3/objects/contacts", json={"properties": {"email": "a@example.com"}}
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["category"] == "CONFLICT"
    assert duplicate.json()["message"] == f"Contact already exists. Existing ID: {contact_id}"

    missing = call(sandbox, "GET", "/crm/v3/objects/contacts/404404")
    assert missing.status_code == 404
    assert missing.json()["category"] == "OBJECT_NOT_FOUND"


def test_concurrent_creates_of_one_email_make_one_contact(sandbox):
    statuses = []

    def create() -> None:
        response = call(
            sandbox,
            "POST",
            "/crm/v3/objects/contacts",
            json={"properties": {"email": "race@example.com"}},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=create) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201] + [409] * 11
    assert len(sandbox.state.contacts) == 1


def test_task_needs_hs_timestamp(sandbox):
    response = call(
        sandbox, "POST", "/crm/v3/objects/tasks", json={"properties": {"hs_task_subject": "x"}}
    )

    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert "hs_timestamp" in response.json()["message"]


def test_task_association_must_be_type_204_to_an_existing_contact(sandbox):
    contact = sandbox.seed_contact(email="a@example.com")

    def create(contact_id: str, type_id: int) -> requests.Response:
        association = {
            "to": {"id": contact_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
        }
        body = {
            "properties": {"hs_timestamp": "2030-01-01T00:00:00Z"},
            "associations": [association],
        }
        return call(sandbox, "POST", "/crm/v3/objects/tasks", json=body)

    assert create(contact["id"], 202).status_code == 400
    assert create("999", 204).status_code == 400
    assert create(contact["id"], 204).status_code == 201


def test_task_search_by_token_and_index_lag(sandbox):
    sandbox.configure(index_lag_seconds=0.2)
    body = {
        "properties": {"hs_timestamp": "1893456000000", "hs_task_body": "Call back. ref: abc123"}
    }
    assert call(sandbox, "POST", "/crm/v3/objects/tasks", json=body).status_code == 201
    query = search_body("hs_task_body", "ABC123", "CONTAINS_TOKEN")

    assert call(sandbox, "POST", "/crm/v3/objects/tasks/search", json=query).json()["total"] == 0
    time.sleep(0.25)
    found = call(sandbox, "POST", "/crm/v3/objects/tasks/search", json=query).json()
    assert found["total"] == 1
    assert (
        call(
            sandbox, "POST", "/crm/v3/objects/tasks/search", json=search_body("hs_task_body", "abc")
        ).json()["total"]
        == 0
    )


def test_note_create(sandbox):
    contact = sandbox.seed_contact(email="a@example.com")
    association = {
        "to": {"id": contact["id"]},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}],
    }
    body = {
        "properties": {"hs_note_body": "hi", "hs_timestamp": "2030-01-01T00:00:00Z"},
        "associations": [association],
    }

    response = call(sandbox, "POST", "/crm/v3/objects/notes", json=body)

    assert response.status_code == 201
    assert response.json()["properties"]["hs_note_body"] == "hi"


def test_unknown_owner_is_404(sandbox):
    assert call(sandbox, "GET", "/crm/v3/owners/1001").json()["firstName"] == "Avery"
    assert call(sandbox, "GET", "/crm/v3/owners/2").status_code == 404


def test_an_archived_owner_is_404_unless_asked_with_archived_true(sandbox):
    # crmOwners.json: `archived` (default false) "Whether to return only results that have
    # been archived"; a deactivated user's owner is archived and keeps no userId.
    sandbox.seed_owner(id="1003", email="gone@example.com", userId=2003, archived=True)

    assert call(sandbox, "GET", "/crm/v3/owners/1003").status_code == 404
    archived = call(sandbox, "GET", "/crm/v3/owners/1003", params={"archived": "true"})
    assert archived.status_code == 200
    assert archived.json()["archived"] is True
    assert "userId" not in archived.json() and archived.json()["userIdIncludingInactive"] == 2003
    active = call(sandbox, "GET", "/crm/v3/owners/1001", params={"archived": "true"})
    assert active.status_code == 404  # "only results that have been archived"
    listed = call(sandbox, "GET", "/crm/v3/owners").json()["results"]
    assert [o["id"] for o in listed] == ["1001"]
    only_archived = call(sandbox, "GET", "/crm/v3/owners", params={"archived": "true"}).json()
    assert [o["id"] for o in only_archived["results"]] == ["1003"]


def test_a_task_cannot_be_assigned_to_an_archived_owner(sandbox):
    sandbox.seed_owner(id="1003", email="gone@example.com", archived=True)

    def create(owner_id: str) -> requests.Response:
        properties = {"hs_timestamp": "2030-01-01T00:00:00Z", "hubspot_owner_id": owner_id}
        return call(sandbox, "POST", "/crm/v3/objects/tasks", json={"properties": properties})

    assert create("1003").status_code == 400
    assert create("1001").status_code == 201


def test_account_details_name_the_configured_time_zone_and_its_offset_now(sandbox):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    assert call(sandbox, "GET", "/account-info/v3/details").json()["timeZone"] == "UTC"
    sandbox.configure(time_zone="America/Los_Angeles")

    details = call(sandbox, "GET", "/account-info/v3/details").json()

    offset = datetime.now(ZoneInfo("America/Los_Angeles")).utcoffset()
    assert details["timeZone"] == "America/Los_Angeles"
    assert details["utcOffsetMilliseconds"] == offset.total_seconds() * 1000
    assert details["utcOffset"] in ("-07:00", "-08:00")
    refused = call(sandbox, "POST", "/__sandbox__/config", json={"time_zone": "Mars/Olympus"})
    assert refused.status_code == 400


def test_fault_fires_the_given_number_of_times(sandbox):
    sandbox.set_faults({"owners.get": {"kind": "status", "status": 500, "times": 2}})

    statuses = [call(sandbox, "GET", "/crm/v3/owners/1001").status_code for _ in range(3)]

    assert statuses == [500, 500, 200]


def test_wildcard_fault_applies_to_every_endpoint(sandbox):
    sandbox.set_faults({"*": {"kind": "status", "status": 503}})

    assert call(sandbox, "GET", "/crm/v3/owners/1001").status_code == 503
    assert call(sandbox, "POST", "/crm/v3/objects/contacts/search", json={}).status_code == 503


def test_429_fault_sets_retry_after(sandbox):
    sandbox.set_faults({"owners.get": {"kind": "status", "status": 429, "retry_after": 3}})

    response = call(sandbox, "GET", "/crm/v3/owners/1001")

    assert response.headers["Retry-After"] == "3"
    assert response.json()["errorType"] == "RATE_LIMIT"


def test_latency_and_malformed_faults(sandbox):
    sandbox.set_faults(
        {
            "owners.get": [
                {"kind": "latency", "ms": 200, "times": 1},
                {"kind": "malformed", "times": 1},
            ]
        }
    )

    started = time.monotonic()
    response = call(sandbox, "GET", "/crm/v3/owners/1001")

    assert time.monotonic() - started >= 0.2
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert call(sandbox, "GET", "/crm/v3/owners/1001").json()["id"] == "1001"


def test_random_faults_follow_their_probability(sandbox):
    sandbox.set_faults(
        {
            "owners.get": {
                "kind": "rate",
                "probability": 1.0,
                "choices": [{"kind": "status", "status": 502}],
            }
        }
    )
    assert call(sandbox, "GET", "/crm/v3/owners/1001").status_code == 502

    sandbox.set_faults(
        {
            "owners.get": {
                "kind": "rate",
                "probability": 0.0,
                "choices": [{"kind": "status", "status": 502}],
            }
        }
    )
    assert call(sandbox, "GET", "/crm/v3/owners/1001").status_code == 200


def test_unknown_fault_kind_is_refused(sandbox):
    with pytest.raises(ValueError):
        sandbox.set_faults({"owners.get": {"kind": "explode"}})
    response = requests.post(
        f"{sandbox.url}/__sandbox__/faults", json={"owners.get": {"kind": "explode"}}, timeout=5
    )
    assert response.status_code == 400


def test_requests_are_recorded_without_the_authorization_header(sandbox):
    call(
        sandbox, "POST", "/crm/v3/objects/contacts", json={"properties": {"email": "a@example.com"}}
    )

    (recorded,) = sandbox.state.requests
    assert recorded.method == "POST"
    assert recorded.endpoint == "contacts.create"
    assert recorded.json == {"properties": {"email": "a@example.com"}}
    assert recorded.status == 201
    assert "Authorization" not in recorded.headers


def test_control_api_seeds_configures_lists_and_resets(sandbox):
    control = f"{sandbox.url}/__sandbox__"
    requests.post(
        f"{control}/owners", json={"id": "7", "email": "o@example.com", "firstName": "O"}, timeout=5
    )
    seeded = requests.post(
        f"{control}/contacts",
        json={"contacts": [{"email": "s@example.com", "owner_id": "7"}]},
        timeout=5,
    ).json()
    requests.post(
        f"{control}/faults",
        json={"faults": {"owners.get": {"kind": "status", "status": 500, "times": 1}}},
        timeout=5,
    )
    config = requests.post(f"{control}/config", json={"latency_ms": 1}, timeout=5).json()

    assert seeded["contacts"][0]["properties"]["hubspot_owner_id"] == "7"
    assert config["latency_ms"] == 1
    assert call(sandbox, "GET", "/crm/v3/owners/7").status_code == 500
    assert call(sandbox, "GET", "/crm/v3/owners/7").json()["firstName"] == "O"
    log = requests.get(f"{control}/requests", timeout=5).json()["requests"]
    assert [(r["endpoint"], r["status"]) for r in log] == [("owners.get", 500), ("owners.get", 200)]
    state = requests.get(f"{control}/state", timeout=5).json()
    assert [c["properties"]["email"] for c in state["contacts"]] == ["s@example.com"]

    assert requests.post(f"{control}/reset", timeout=5).ok
    assert requests.get(f"{control}/requests", timeout=5).json() == {"requests": []}
    assert call(sandbox, "GET", "/crm/v3/owners/7").status_code == 404
    assert sandbox.state.config.latency_ms == 0
    assert call(sandbox, "GET", "/crm/v3/owners/1001").ok


def test_unknown_setting_is_refused(sandbox):
    response = requests.post(f"{sandbox.url}/__sandbox__/config", json={"latency": 1}, timeout=5)

    assert response.status_code == 400
    assert "latency" in response.json()["message"]


def test_kept_alive_calls_answer_without_a_delayed_ack_stall(sandbox):
    # With Nagle's algorithm on the server, every call after the first on a kept-alive socket
    # waited ~40 ms for the client's delayed ACK. The sandbox has no latency configured here,
    # so each call should take a few milliseconds.
    session = requests.Session()
    session.headers.update(AUTH)
    call_ms = []
    for _ in range(9):
        started = time.perf_counter()
        response = session.post(
            sandbox.url + "/crm/v3/objects/contacts/search",
            json=search_body("email", "nobody@example.com"),
            timeout=5,
        )
        call_ms.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    assert sorted(call_ms)[4] < 25, call_ms  # the median; the stall made it ≥ 40


def test_form_submissions_come_newest_first_fifty_at_most_paged_with_after(sandbox):
    form = "0b5f0c1e-2222-4333-8444-555566667777"
    sandbox.seed_submissions(
        form,
        [
            {
                "submittedAt": 1_700_000_000_000 + n,
                "values": [{"name": "email", "value": f"{n}@x.test"}],
            }
            for n in range(60)
        ],
    )
    path = f"/form-integrations/v1/submissions/forms/{form}"

    assert call(sandbox, "GET", path, params={"limit": 51}).status_code == 400
    first = call(sandbox, "GET", path, params={"limit": 50}).json()
    rest = call(
        sandbox, "GET", path, params={"limit": 50, "after": first["paging"]["next"]["after"]}
    )

    times = [s["submittedAt"] for s in first["results"] + rest.json()["results"]]
    assert times == sorted(times, reverse=True) and len(times) == 60
    assert "paging" not in rest.json()
    assert set(first["results"][0]) == {"conversionId", "submittedAt", "values", "pageUrl"}


def test_search_answers_carry_no_rate_limit_headers_other_answers_do(sandbox):
    search = call(
        sandbox, "POST", "/crm/v3/objects/contacts/search", json=search_body("email", "a@b.c")
    )
    owner = call(sandbox, "GET", "/crm/v3/owners/1001")

    assert "X-HubSpot-RateLimit-Remaining" not in search.headers
    assert "X-HubSpot-RateLimit-Remaining" in owner.headers


def test_repeated_query_parameters_are_read_as_a_list(sandbox):
    contact = sandbox.seed_contact(email="a@example.com", firstname="A", company="C")

    answer = call(
        sandbox,
        "GET",
        f"/crm/v3/objects/contacts/{contact['id']}",
        params=[("properties", "firstname"), ("properties", "company")],
    ).json()

    assert answer["properties"]["firstname"] == "A" and answer["properties"]["company"] == "C"
