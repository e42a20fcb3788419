"""10,000 hostile requests to the webhook over HTTP: never a 5xx, never a stored row."""

from __future__ import annotations

import json
import random
import time

import pytest
import requests

from intake.models import FormSubmission, NonLeadDelivery
from intake.signatures import sign_v1, sign_v3
from tests.harness import GunicornServer

from .conftest import size

pytestmark = [pytest.mark.e2e, pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

SECRET = "fuzz-client-secret"
PATH = "/api/webhooks/hubspot/forms"


def valid_body(n: int) -> bytes:
    return json.dumps(
        {
            "portalId": 62515,
            "formId": "fuzz",
            "fields": [{"name": "email", "value": f"fuzz{n}@example.com"}],
        }
    ).encode()


def v3_headers(url: str, body: bytes, *, skew_ms: int = 0, method: str = "POST") -> dict:
    ts = str(int(time.time() * 1000) + skew_ms)
    sig = sign_v3(secret=SECRET, method=method, uri=url, body=body, timestamp_ms=ts)
    return {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts}


def v1_headers(body: bytes) -> dict:
    return {"X-HubSpot-Signature": sign_v1(secret=SECRET, body=body)}


def bad_request(rng: random.Random, url: str, n: int) -> tuple[str, bytes, dict[str, str]]:
    """One invalid request: (kind, body, headers). Content-Type is JSON unless the kind says."""
    body = valid_body(100_000 + n)
    json_type = {"Content-Type": "application/json"}
    kind = rng.choice(KINDS)
    if kind == "no_signature":
        return kind, body, json_type
    if kind == "wrong_secret":
        return kind, body, {**json_type, "X-HubSpot-Signature": sign_v1(secret="x", body=body)}
    if kind == "truncated_signature":
        headers = v3_headers(url, body)
        headers["X-HubSpot-Signature-v3"] = headers["X-HubSpot-Signature-v3"][:-4]
        return kind, body, {**json_type, **headers}
    if kind == "tampered_body":
        return kind, body + b" ", {**json_type, **v3_headers(url, body)}
    if kind == "stale_timestamp":
        return kind, body, {**json_type, **v3_headers(url, body, skew_ms=-301_000)}
    if kind == "future_timestamp":
        return kind, body, {**json_type, **v3_headers(url, body, skew_ms=+301_000)}
    if kind == "garbage_timestamp":
        headers = v3_headers(url, body)
        headers["X-HubSpot-Request-Timestamp"] = rng.choice(["-1", "1e12", "abc", "9" * 40])
        return kind, body, {**json_type, **headers}
    if kind == "bad_version":
        return kind, body, {**json_type, **v1_headers(body), "X-HubSpot-Signature-Version": "v9"}
    # The remaining kinds are correctly signed: the body or the content type is what is wrong.
    if kind == "malformed_json":
        body = rng.choice([b"{", b"[1,2", b"nul", b"", b"\xff\xfe{}", b'{"a":}'])
    elif kind == "non_utf8":
        body = b'{"fields":[{"name":"email","value":"\xc3\x28@x.com"}]}'
    elif kind == "deeply_nested":
        depth = rng.choice([200, 2000, 50_000])
        body = b"[" * depth + b"]" * depth
    elif kind == "huge":
        body = b'{"fields":[],"pad":"' + b"a" * (2 * 1024 * 1024) + b'"}'
    elif kind == "wrong_shape":
        body = rng.choice(
            [b"[]", b"42", b'"x"', b"{}", b'[{"eventId": 1}]', b"[" + b"1," * 200 + b"1]"]
        )
    elif kind == "too_many_events":
        body = json.dumps(
            [{"objectId": i, "subscriptionType": "contact.creation"} for i in range(101)]
        ).encode()
    elif kind == "wrong_content_type":
        return (
            kind,
            body,
            {
                "Content-Type": rng.choice(["text/plain", "application/x-www-form-urlencoded", ""]),
                **v1_headers(body),
            },
        )
    return kind, body, {**json_type, **v1_headers(body)}  # fmt: skip


KINDS = [
    "no_signature", "wrong_secret", "truncated_signature", "tampered_body", "stale_timestamp",
    "future_timestamp", "garbage_timestamp", "bad_version", "malformed_json", "non_utf8",
    "deeply_nested", "huge", "wrong_shape", "too_many_events", "wrong_content_type",
]  # fmt: skip


def test_hostile_requests_never_5xx_and_store_nothing(worker_env):
    total = size(10_000, 300)
    rng = random.Random(20251127)
    env = {**worker_env, "HUBSPOT_CLIENT_SECRET": SECRET, "LOG_LEVEL": "error"}
    statuses: dict[str, dict[int, int]] = {}
    valid_sent, replays = 0, 0
    with GunicornServer(env) as web, requests.Session() as http:
        url = web.url + PATH
        originals: list[tuple[bytes, dict]] = []
        for n in range(total):
            if n % 20 == 0:  # 5%: a genuine request, replayed later
                body = valid_body(n)
                headers = {"Content-Type": "application/json", **v1_headers(body)}
                response = http.post(url, data=body, headers=headers, timeout=30)
                assert response.status_code == 202, response.text
                originals.append((body, headers))
                valid_sent += 1
                continue
            if n % 20 == 1 and originals:  # 5%: a replay of a genuine request
                body, headers = rng.choice(originals)
                response = http.post(url, data=body, headers=headers, timeout=30)
                assert response.status_code == 202
                assert response.json()["accepted"] == 0 and response.json()["duplicates"] == 1
                replays += 1
                continue
            kind, body, headers = bad_request(rng, url, n)
            response = http.post(url, data=body, headers=headers, timeout=30)
            statuses.setdefault(kind, {})
            statuses[kind][response.status_code] = statuses[kind].get(response.status_code, 0) + 1
    print(f"\nfuzz: {total} requests, {valid_sent} genuine, {replays} replays")
    for kind, seen in sorted(statuses.items()):
        print(f"  {kind:20} {dict(sorted(seen.items()))}")
    server_errors = {k: s for k, v in statuses.items() for s in v if s >= 500}
    assert not server_errors, server_errors
    # A batch whose events are all unreadable is acknowledged, each event recorded as refused
    # (issue #12: one bad event never sinks a batch); it still stores no submission.
    assert all(
        s in (400, 401, 413, 415) or (kind == "wrong_shape" and s == 202)
        for kind, v in statuses.items()
        for s in v
    ), statuses
    assert not NonLeadDelivery.objects.exclude(outcome="refused").exists()
    stored = FormSubmission.objects.count()
    distinct = FormSubmission.objects.values("dedupe_key").distinct().count()
    print(f"  rows stored {stored} (genuine {valid_sent}), distinct dedupe keys {distinct}")
    assert stored == distinct == valid_sent
    assert not FormSubmission.objects.exclude(form_id="fuzz").exists()
