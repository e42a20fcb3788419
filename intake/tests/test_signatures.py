import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.signatures import (
    SignatureError,
    hubspot_decode_uri,
    looks_signed,
    sign_v1,
    sign_v2,
    sign_v3,
    verify_request,
)

HUBSPOT = Path(__file__).resolve().parents[3] / "shared" / "hubspot"
VECTORS = json.loads((HUBSPOT / "vectors.json").read_text())
SECRET = "test-client-secret"
URI = "https://leadline.example.com/hooks/hubspot/"
BODY = b'[{"eventId":1,"objectId":123}]'
NOW_MS = 1_764_201_600_000
MAX_AGE = 300


def vector_body(vector: dict) -> bytes:
    if "body_file" in vector:
        return (HUBSPOT / vector["body_file"]).read_bytes()
    return vector["body"].encode()


def v3_headers(*, body: bytes = BODY, uri: str = URI, timestamp: int = NOW_MS) -> dict[str, str]:
    signature = sign_v3(secret=SECRET, method="POST", uri=uri, body=body, timestamp_ms=timestamp)
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": str(timestamp)}


def verify(headers: dict[str, str], *, body: bytes = BODY, uri: str = URI, **kwargs) -> str:
    options = {"method": "POST", "secret": SECRET, "max_age_seconds": MAX_AGE, "now_ms": NOW_MS}
    options.update(kwargs)
    return verify_request(uri=uri, body=body, headers=headers, **options)


def reason_for(headers: dict[str, str], **kwargs) -> str:
    with pytest.raises(SignatureError) as caught:
        verify(headers, **kwargs)
    return caught.value.reason


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["source"])
def test_every_published_vector_verifies(vector: dict) -> None:
    headers = {"X-HubSpot-Signature-Version": vector["version"]}
    if vector["version"] == "v3":
        headers = {
            "X-HubSpot-Signature-v3": vector["signature"],
            "X-HubSpot-Request-Timestamp": vector["timestamp"],
        }
    else:
        headers["X-HubSpot-Signature"] = vector["signature"]
    version = verify_request(
        method=vector["method"],
        uri=vector["uri"] or "https://unused.example.com/",
        body=vector_body(vector),
        headers=headers,
        secret=VECTORS["secret"],
        max_age_seconds=MAX_AGE,
        now_ms=int(vector.get("timestamp", NOW_MS)),
    )
    assert version == vector["version"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["source"])
def test_signers_reproduce_every_published_vector(vector: dict) -> None:
    secret, body = VECTORS["secret"], vector_body(vector)
    if vector["version"] == "v1":
        signature = sign_v1(secret=secret, body=body)
    elif vector["version"] == "v2":
        signature = sign_v2(secret=secret, method=vector["method"], uri=vector["uri"], body=body)
    else:
        signature = sign_v3(
            secret=secret,
            method=vector["method"],
            uri=vector["uri"],
            body=body,
            timestamp_ms=vector["timestamp"],
        )
    assert signature == vector["signature"]


def test_valid_v3_request_verifies() -> None:
    assert verify(v3_headers()) == "v3"


def test_v3_with_tampered_body_is_rejected() -> None:
    assert reason_for(v3_headers(), body=BODY + b" ") == "bad_signature"


def test_v3_with_tampered_uri_is_rejected() -> None:
    assert reason_for(v3_headers(), uri=URI + "?extra=1") == "bad_signature"


def test_stale_v3_timestamp_is_rejected() -> None:
    headers = v3_headers(timestamp=NOW_MS - MAX_AGE * 1000 - 1)
    assert reason_for(headers) == "stale_timestamp"


def test_future_v3_timestamp_is_rejected() -> None:
    headers = v3_headers(timestamp=NOW_MS + MAX_AGE * 1000 + 1)
    assert reason_for(headers) == "future_timestamp"


def test_v3_timestamp_at_the_age_limit_is_accepted() -> None:
    assert verify(v3_headers(timestamp=NOW_MS - MAX_AGE * 1000)) == "v3"
    assert verify(v3_headers(timestamp=NOW_MS + MAX_AGE * 1000)) == "v3"


@pytest.mark.parametrize("timestamp", ["", "soon", "1.7e12", "-1", "+1764201600000", "1_000"])
def test_non_integer_v3_timestamp_is_rejected(timestamp: str) -> None:
    headers = v3_headers() | {"X-HubSpot-Request-Timestamp": timestamp}
    expected = "missing_timestamp" if timestamp == "" else "bad_timestamp"
    assert reason_for(headers) == expected


def test_forged_stale_request_reports_the_signature_not_the_clock() -> None:
    headers = v3_headers(timestamp=NOW_MS - 10 * MAX_AGE * 1000)
    assert reason_for(headers, body=b"forged") == "bad_signature"


def test_v3_signature_under_another_secret_is_rejected() -> None:
    assert reason_for(v3_headers(), secret="another-secret") == "bad_signature"


def test_v3_uses_the_real_clock_when_none_is_given() -> None:
    signed_in_2001 = v3_headers(timestamp=1_000_000_000_000)
    assert reason_for(signed_in_2001, now_ms=None) == "stale_timestamp"


def test_non_ascii_body_verifies_for_every_version() -> None:
    body = '{"firstname":"José","company":"Ñandú Logística","note":"🚀"}'.encode()
    assert verify(v3_headers(body=body), body=body) == "v3"
    v2 = sign_v2(secret=SECRET, method="POST", uri=URI, body=body)
    headers = {"X-HubSpot-Signature": v2, "X-HubSpot-Signature-Version": "v2"}
    assert verify(headers, body=body) == "v2"
    assert verify({"X-HubSpot-Signature": sign_v1(secret=SECRET, body=body)}, body=body) == "v1"


def test_v3_uri_with_encoded_query_characters_verifies() -> None:
    uri = URI + "?q=a%3Ab%20c&next=%2Fdone%3f"
    headers = v3_headers(uri=uri)
    assert verify(headers, uri=uri) == "v3"
    decoded = hubspot_decode_uri(uri)
    assert decoded == URI + "?q=a:b%20c&next=/done?"
    assert headers["X-HubSpot-Signature-v3"] == v3_headers(uri=decoded)["X-HubSpot-Signature-v3"]


def test_decode_table_decodes_only_hubspots_characters() -> None:
    encoded = "%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B"
    assert hubspot_decode_uri(encoded) == ":/?@!$'()*,;"
    assert hubspot_decode_uri(encoded.lower()) == ":/?@!$'()*,;"
    assert hubspot_decode_uri("a%20b%25c%26d%3De%2Bf%23") == "a%20b%25c%26d%3De%2Bf%23"


def test_decoding_is_a_single_pass() -> None:
    assert hubspot_decode_uri("%253A") == "%253A"


def test_valid_v2_request_verifies() -> None:
    headers = {
        "X-HubSpot-Signature": sign_v2(secret=SECRET, method="POST", uri=URI, body=BODY),
        "X-HubSpot-Signature-Version": "v2",
    }
    assert verify(headers) == "v2"
    assert reason_for(headers, body=BODY + b" ") == "bad_signature"
    assert reason_for(headers, uri=URI + "x") == "bad_signature"
    assert reason_for(headers, method="GET") == "bad_signature"


def test_valid_v1_request_verifies_and_ignores_the_uri() -> None:
    headers = {"X-HubSpot-Signature": sign_v1(secret=SECRET, body=BODY)}
    assert verify(headers) == "v1"
    assert verify(headers | {"X-HubSpot-Signature-Version": "v1"}) == "v1"
    assert verify(headers, uri="https://anything.example.com/") == "v1"
    assert reason_for(headers, body=BODY + b" ") == "bad_signature"


def test_v2_signature_sent_as_v1_is_rejected() -> None:
    v2 = sign_v2(secret=SECRET, method="POST", uri=URI, body=BODY)
    headers = {"X-HubSpot-Signature": v2, "X-HubSpot-Signature-Version": "v1"}
    assert reason_for(headers) == "bad_signature"


@pytest.mark.parametrize("version", ["v3", "v4", "sha256", "2"])
def test_unknown_signature_version_header_is_rejected(version: str) -> None:
    headers = {
        "X-HubSpot-Signature": sign_v1(secret=SECRET, body=BODY),
        "X-HubSpot-Signature-Version": version,
    }
    assert reason_for(headers) == "unsupported_version"


def test_request_without_signature_headers_is_rejected() -> None:
    assert reason_for({}) == "missing_signature"
    assert reason_for({"X-HubSpot-Request-Timestamp": str(NOW_MS)}) == "missing_signature"
    assert reason_for({"X-HubSpot-Signature": ""}) == "missing_signature"


def test_v3_signature_without_timestamp_is_rejected() -> None:
    headers = v3_headers()
    del headers["X-HubSpot-Request-Timestamp"]
    assert reason_for(headers) == "missing_timestamp"


def test_v3_is_preferred_over_a_broken_v1_signature() -> None:
    headers = v3_headers() | {"X-HubSpot-Signature": "0" * 64}
    assert verify(headers) == "v3"


def test_header_names_are_matched_case_insensitively() -> None:
    headers = {name.lower(): value for name, value in v3_headers().items()}
    assert verify(headers) == "v3"
    assert verify({"X-HUBSPOT-SIGNATURE": sign_v1(secret=SECRET, body=BODY)}) == "v1"


def test_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="secret"):
        verify(v3_headers(), secret="")


def test_non_ascii_signature_header_is_rejected() -> None:
    assert reason_for(v3_headers() | {"X-HubSpot-Signature-v3": "é" * 44}) == "bad_signature"


HEADER_NAMES = st.sampled_from(
    [
        "X-HubSpot-Signature-v3",
        "x-hubspot-signature-v3",
        "X-HubSpot-Request-Timestamp",
        "X-HubSpot-Signature",
        "X-HUBSPOT-SIGNATURE-VERSION",
    ]
)
HEADER_VALUES = st.one_of(
    st.text(),
    st.sampled_from(["v1", "v2", "v3", str(NOW_MS), "0" * 64]),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
)


@given(
    headers=st.dictionaries(st.one_of(HEADER_NAMES, st.text()), HEADER_VALUES, max_size=6),
    body=st.binary(max_size=256),
    now_ms=st.one_of(st.none(), st.integers(min_value=0, max_value=10**15)),
)
def test_verify_request_only_returns_a_version_or_raises_signature_error(
    headers: dict[str, str], body: bytes, now_ms: int | None
) -> None:
    try:
        version = verify(headers, body=body, now_ms=now_ms)
    except SignatureError as error:
        assert error.reason
    else:
        assert version in {"v1", "v2", "v3"}


def test_signed_headers_verify_for_every_version_and_refuse_an_unknown_one() -> None:
    from intake.signatures import signed_headers

    uri, body = (
        "https://leadline.example.com/api/webhooks/hubspot/forms?a=%3A",
        b'{"x": "\xc3\xa9"}',
    )
    for version in ("v1", "v2", "v3"):
        headers = signed_headers(secret=SECRET, version=version, method="POST", uri=uri, body=body)
        assert (
            verify_request(
                method="POST",
                uri=uri,
                body=body,
                headers=headers,
                secret=SECRET,
                max_age_seconds=300,
            )
            == version
        )
    with pytest.raises(ValueError, match="unknown signature version"):
        signed_headers(secret=SECRET, version="v4", method="POST", uri=uri, body=body)


@pytest.mark.parametrize(
    ("headers", "min_version", "expected"),
    [
        (v3_headers(), "v1", True),
        (v3_headers(), "v3", True),
        (v3_headers(timestamp=NOW_MS - (MAX_AGE + 1) * 1000), "v1", False),
        (v3_headers(timestamp=NOW_MS + (MAX_AGE + 1) * 1000), "v1", False),
        ({"X-HubSpot-Signature-v3": "a" * 64, "X-HubSpot-Request-Timestamp": "soon"}, "v1", False),
        ({"X-HubSpot-Signature-v3": "a" * 64}, "v1", False),
        ({"x-hubspot-signature": "a" * 64}, "v1", True),
        ({"X-HubSpot-Signature": "a" * 64, "X-HubSpot-Signature-Version": "v2"}, "v2", True),
        ({"X-HubSpot-Signature": "a" * 64}, "v2", False),
        ({"X-HubSpot-Signature": "a" * 64, "X-HubSpot-Signature-Version": "v2"}, "v3", False),
        ({"X-HubSpot-Signature": "a" * 64, "X-HubSpot-Signature-Version": "v9"}, "v1", False),
        ({}, "v1", False),
    ],
)
def test_looks_signed_judges_the_headers_without_the_body(headers, min_version, expected):
    """The webhook reads a body over WEBHOOK_MAX_BODY_BYTES only when its headers could pass
    verify_request: a fresh v3 signature, or v1/v2 at or above the minimum version."""
    got = looks_signed(headers, max_age_seconds=MAX_AGE, min_version=min_version, now_ms=NOW_MS)
    assert got is expected
