"""HubSpot request signatures (v1, v2, v3), checked over the raw body bytes.

https://developers.hubspot.com/docs/api/webhooks/validating-requests
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping

SIGNATURE_V3 = "X-HubSpot-Signature-v3"
TIMESTAMP = "X-HubSpot-Request-Timestamp"
SIGNATURE = "X-HubSpot-Signature"
VERSION = "X-HubSpot-Signature-Version"

_DECODED_ESCAPES = re.compile(r"%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)", re.IGNORECASE)
# Ordinary epoch milliseconds; also keeps int() away from "+1", "1_0", non-ASCII digits.
_TIMESTAMP = re.compile(r"[0-9]{1,15}")


class SignatureError(Exception):
    """A webhook request whose signature cannot be trusted; `reason` is a stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


def hubspot_decode_uri(uri: str) -> str:
    """Decode only the escapes HubSpot decodes before signing v3; leave the rest (e.g. %20)."""
    return _DECODED_ESCAPES.sub(lambda match: chr(int(match.group(1), 16)), uri)


def sign_v1(*, secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def sign_v2(*, secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + method.encode() + uri.encode() + body).hexdigest()


def sign_v3(*, secret: str, method: str, uri: str, body: bytes, timestamp_ms: int | str) -> str:
    message = method.encode() + hubspot_decode_uri(uri).encode() + body + str(timestamp_ms).encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_request(
    *,
    method: str,
    uri: str,
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    max_age_seconds: int,
    now_ms: int | None = None,
) -> str:
    """Return the signature version that verified ("v3", "v2" or "v1"), or raise SignatureError.

    `uri` is the full public URL HubSpot called, query string as received.
    """
    if not secret:
        # An empty secret would make every signature forgeable: a configuration bug, not a 403.
        raise ValueError("HubSpot client secret is empty")
    headers = {str(key).lower(): value for key, value in headers.items()}  # one pass, not four
    signature_v3 = _header(headers, SIGNATURE_V3)
    timestamp = _header(headers, TIMESTAMP)
    signature = _header(headers, SIGNATURE)
    if signature_v3 and timestamp:
        _verify_v3(method, uri, body, signature_v3, timestamp, secret, max_age_seconds, now_ms)
        return "v3"
    if not signature:
        if signature_v3:
            raise SignatureError("missing_timestamp", f"{SIGNATURE_V3} sent without {TIMESTAMP}")
        raise SignatureError("missing_signature", f"no {SIGNATURE_V3} or {SIGNATURE} header")
    version = (_header(headers, VERSION) or "v1").lower()
    if version == "v1":
        expected = sign_v1(secret=secret, body=body)
    elif version == "v2":
        expected = sign_v2(secret=secret, method=method, uri=uri, body=body)
    else:
        raise SignatureError("unsupported_version", f"{VERSION} must be v1 or v2")
    _compare(expected, signature.lower(), version)
    return version


def looks_signed(
    headers: Mapping[str, str], *, max_age_seconds: int, min_version: str, now_ms: int | None = None
) -> bool:
    """Whether the headers carry a signature verify_request could accept, judged without the
    body: a v3 signature with a fresh timestamp (v3 is never below ``min_version``), or a v1/v2
    one at or above ``min_version``.
    A cheap gate before reading a large body; it proves nothing (headers can be forged)."""
    headers = {str(key).lower(): value for key, value in headers.items()}
    timestamp = _header(headers, TIMESTAMP)
    if _header(headers, SIGNATURE_V3) and _TIMESTAMP.fullmatch(timestamp):
        return abs(_age_ms(timestamp, now_ms)) <= max_age_seconds * 1000
    version = (_header(headers, VERSION) or "v1").lower()
    return bool(_header(headers, SIGNATURE)) and version in ("v1", "v2") and version >= min_version


def _verify_v3(
    method: str,
    uri: str,
    body: bytes,
    signature: str,
    timestamp: str,
    secret: str,
    max_age_seconds: int,
    now_ms: int | None,
) -> None:
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureError("bad_timestamp", f"{TIMESTAMP} is not epoch milliseconds")
    expected = sign_v3(secret=secret, method=method, uri=uri, body=body, timestamp_ms=timestamp)
    _compare(expected, signature, "v3")
    # Checked after the HMAC so that a genuine request is told apart from a forged one:
    # a stale genuine request points at clock skew or a replay, not at the secret.
    age_ms = _age_ms(timestamp, now_ms)
    if age_ms > max_age_seconds * 1000:
        raise SignatureError("stale_timestamp", f"request is {age_ms // 1000} s old")
    if -age_ms > max_age_seconds * 1000:
        raise SignatureError("future_timestamp", f"request is {-age_ms // 1000} s in the future")


def _age_ms(timestamp: str, now_ms: int | None) -> int:
    """How old a v3 timestamp (epoch milliseconds) is: negative when it is in the future."""
    return (int(time.time() * 1000) if now_ms is None else now_ms) - int(timestamp)


def _compare(expected: str, provided: str, version: str) -> None:
    # compare_digest refuses non-ASCII str; such a value can't be a valid signature anyway.
    if not provided.isascii() or not hmac.compare_digest(expected, provided):
        raise SignatureError("bad_signature", f"{version} signature does not match")


def _header(lowered: Mapping[str, str], name: str) -> str:
    value = lowered.get(name.lower())
    return "" if value is None else str(value).strip()


def signed_headers(
    *,
    secret: str,
    version: str,
    method: str,
    uri: str,
    body: bytes,
    timestamp_ms: int | None = None,
) -> dict[str, str]:
    """The signature headers HubSpot would send with this request (``send_test_webhook`` and
    the tests sign with it). v3 is stamped now unless ``timestamp_ms`` is given."""
    if version == "v3":
        timestamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        signature = sign_v3(
            secret=secret, method=method, uri=uri, body=body, timestamp_ms=timestamp
        )
        return {SIGNATURE_V3: signature, TIMESTAMP: str(timestamp)}
    if version == "v2":
        signature = sign_v2(secret=secret, method=method, uri=uri, body=body)
    elif version == "v1":
        signature = sign_v1(secret=secret, body=body)
    else:
        raise ValueError(f"unknown signature version {version!r}; use v1, v2 or v3")
    return {SIGNATURE: signature, VERSION: version}
