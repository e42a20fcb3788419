"""The HubSpot webhook: verify, parse, store, answer 202 — in that order, and fast.

A plain Django view rather than DRF: nothing (no parsers, no authentication, no session)
may touch the body before the signature over its raw bytes has been checked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse, UnreadablePostError
from django.utils import timezone
from django.utils.encoding import escape_uri_path
from django.views.decorators.csrf import csrf_exempt

from intake.metrics import EVENTS, INGEST_LATENCY, WEBHOOKS
from intake.models import NonLeadOutcome
from intake.payloads import Delivery, PayloadError, parse_delivery
from intake.services import IngestResult, refused_body_keep, submissions_ingest
from intake.signatures import SignatureError, looks_signed, verify_request

logger = logging.getLogger("leadline.intake")

DATABASE_RETRY_AFTER_SECONDS = 30


class Refusal(Exception):
    """Why a request is answered with an error. ``error`` is shown; ``reason`` is only logged."""

    def __init__(
        self,
        status: int,
        outcome: str,
        error: str,
        *,
        reason: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status, self.outcome, self.error = status, outcome, error
        self.reason = reason or outcome
        self.headers = headers or {}


@csrf_exempt
def hubspot_forms(request: HttpRequest) -> JsonResponse:
    started = time.perf_counter()
    try:
        body, signature_version = _verified_body(request)
        query, unsigned = _signed_query(request, signature_version)
        received_at = timezone.now()
        delivery = _parse(body, query, signature_version, received_at)
        result = _store(delivery, signature_version, received_at)
    except Refusal as refusal:
        return _refuse(refusal)
    duration = time.perf_counter() - started
    WEBHOOKS.labels(outcome="accepted").inc()
    INGEST_LATENCY.observe(duration)
    _count_events(result)
    logger.info(
        "Webhook received",
        extra={
            "accepted": len(result.accepted_ids),
            "duplicates": result.duplicates,
            "joined": len(result.joined),
            "non_leads": result.non_leads,
            "refused": len(delivery.refused),
            "signature_version": signature_version,
            "duration_ms": round(duration * 1000, 1),
        },
    )
    body = {
        "accepted": len(result.accepted_ids),
        "duplicates": result.duplicates,
        "submission_ids": result.accepted_ids,
        "joined": len(result.joined),
        # Each joined delivery and the workflow of the lead it joined (no new workflow).
        "joined_leads": [
            {"submission_id": sid, "workflow_id": workflow_id}
            for sid, workflow_id in result.joined_workflows.items()
        ],
        "workflows_started": len(result.workflow_ids),
        # The numbers the dashboard, admin and API show for these leads (issue #15).
        "workflow_ids": result.workflow_ids,
        "ignored": result.non_leads.get(NonLeadOutcome.IGNORED, 0),
        "applied": result.applied,
        "refused": [{"index": e.index, "reason": e.reason} for e in delivery.refused],
    }
    if unsigned:
        body["ignored_query_parameters"] = {
            "names": unsigned,
            "reason": f"{signature_version} signs the body only; unsigned query parameters "
            "are not used for identity or storage",
        }
    return JsonResponse(body, status=202)


def _signed_query(request: HttpRequest, signature_version: str) -> tuple[dict, list[str]]:
    """The query parameters the signature covers: all under v2/v3 (they sign the URI), none
    under v1 (it signs the body only, so a captured body could be replayed with any query).
    Returns them and the names of the ones ignored."""
    if signature_version == "v1":
        return {}, sorted(request.GET.keys())
    return request.GET, []


def _count_events(result: IngestResult) -> None:
    EVENTS.labels(route="lead").inc(len(result.workflow_ids))
    EVENTS.labels(route="joined").inc(len(result.joined))
    EVENTS.labels(route="duplicate").inc(result.duplicates)
    for outcome, count in result.non_leads.items():
        EVENTS.labels(route=outcome).inc(count)


def _verified_body(request: HttpRequest) -> tuple[bytes, str]:
    """The raw body and the signature version that verified it; cheap checks first."""
    if request.method != "POST":
        raise Refusal(405, "method_not_allowed", "only POST is allowed", headers={"Allow": "POST"})
    secret = settings.HUBSPOT_CLIENT_SECRET
    if not secret:
        raise Refusal(503, "not_configured", "webhook secret not configured")
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    ceiling = max(limit, settings.WEBHOOK_KEEP_OVERSIZE_BYTES)
    too_large = Refusal(413, "too_large", f"body larger than {limit} bytes")
    declared = _declared_length(request)
    # Over the limit, only a request that looks signed is read (to be kept if it is).
    if declared > ceiling or (declared > limit and not _looks_signed(request)):
        raise too_large
    if request.content_type.lower() != "application/json":
        raise Refusal(415, "unsupported_media_type", "Content-Type must be application/json")
    try:
        body = _read_body(request)
    except RequestDataTooBig:
        raise too_large from None
    except UnreadablePostError:
        raise Refusal(400, "unreadable_body", "the body could not be read") from None
    if len(body) > ceiling:  # a body with no Content-Length (chunked, under ASGI)
        raise too_large
    try:
        version = _signature_version(request, body, secret)
    except Refusal:
        if len(body) > limit:
            raise too_large from None  # the same answer, signed or not
        raise
    if len(body) > limit:
        _keep_oversized(body, limit, version)
        raise too_large
    return body, version


def _signature_version(request: HttpRequest, body: bytes, secret: str) -> str:
    """The version of HubSpot's signature that verifies ``body``; a Refusal (401) otherwise."""
    try:
        version = verify_request(
            method=request.method,
            uri=signed_uri(request),
            body=body,
            headers=request.headers,
            secret=secret,
            max_age_seconds=settings.WEBHOOK_MAX_AGE_SECONDS,
        )
    except SignatureError as exc:
        # The specific reason (stale, missing, mismatch) helps an attacker; only log it.
        raise Refusal(401, "invalid_signature", "invalid signature", reason=exc.reason) from None
    if version < settings.WEBHOOK_MIN_SIGNATURE_VERSION:  # "v1" < "v2" < "v3"
        raise Refusal(
            401,
            "invalid_signature",
            "invalid signature",
            reason=f"{version} is below WEBHOOK_MIN_SIGNATURE_VERSION",
        )
    return version


def _looks_signed(request: HttpRequest) -> bool:
    return looks_signed(
        request.headers,
        max_age_seconds=settings.WEBHOOK_MAX_AGE_SECONDS,
        min_version=settings.WEBHOOK_MIN_SIGNATURE_VERSION,
    )


def _read_body(request: HttpRequest) -> bytes:
    """The raw body. One over DATA_UPLOAD_MAX_MEMORY_SIZE (Django's limit for every view) is
    read here only, up to its declared length, which was checked against
    WEBHOOK_KEEP_OVERSIZE_BYTES: the limit stays where it was for every other view."""
    if _declared_length(request) <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return request.body
    return request.read()


def _keep_oversized(body: bytes, limit: int, signature_version: str) -> None:
    """A signed body over WEBHOOK_MAX_BODY_BYTES (and up to WEBHOOK_KEEP_OVERSIZE_BYTES) is not
    processed, but kept as a refused delivery before the 413: HubSpot workflows never retry a
    4xx, and a contact-based workflow's body carries every property's history, so this row is
    the only copy an operator can find. An unsigned one gets the same 413 and is not kept."""
    with _storage():
        refused_body_keep(
            body=body,
            reason=f"the body is {len(body)} bytes, over WEBHOOK_MAX_BODY_BYTES ({limit})",
            signature_version=signature_version,
            received_at=timezone.now(),
        )
    raise Refusal(
        413,
        "too_large",
        f"body larger than {limit} bytes (the body is kept, refused, for review)",
        reason="too_large, signed: kept for review",
    )


def _parse(body: bytes, query, signature_version: str, received_at: datetime) -> Delivery:
    """The delivery in the body. A signed body that cannot be read as a whole is kept (it is
    genuine, and HubSpot workflows never retry a 400) and then refused."""
    try:
        return parse_delivery(body, query=query)
    except PayloadError as exc:
        reason = str(exc)
    with _storage():
        refused_body_keep(
            body=body, reason=reason, signature_version=signature_version, received_at=received_at
        )
    raise Refusal(400, "malformed", f"{reason} (the body is kept, refused, for review)")


def _store(delivery: Delivery, signature_version: str, received_at: datetime) -> IngestResult:
    with _storage():
        return submissions_ingest(
            items=delivery.items,
            refused=delivery.refused,
            signature_version=signature_version,
            received_at=received_at,
        )


@contextmanager
def _storage() -> Iterator[None]:
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        # Nothing was committed (one transaction): 503 makes HubSpot deliver again later.
        raise Refusal(
            503,
            "storage_unavailable",
            "storage unavailable, retry",
            reason=f"database: {type(exc).__name__}",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        ) from None


def _refuse(refusal: Refusal) -> JsonResponse:
    WEBHOOKS.labels(outcome=refusal.outcome).inc()
    log = logger.error if refusal.status >= 500 else logger.warning
    log("Webhook refused", extra={"status": refusal.status, "reason": refusal.reason})
    response = JsonResponse({"error": refusal.error}, status=refusal.status)
    for name, value in refusal.headers.items():
        response[name] = value
    return response


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # Django then reads nothing: the (empty) body fails verification or parsing


def signed_uri(request: HttpRequest) -> str:
    """The URL HubSpot called and signed: scheme, host, path and query, encoded as sent.

    Behind a proxy the request's own host and scheme differ from HubSpot's, hence
    PUBLIC_BASE_URL. Otherwise the host comes from Django (X-Forwarded-Host only with
    USE_X_FORWARDED_HOST, the scheme per SECURE_PROXY_SSL_HEADER).
    """
    target = _request_target(request)
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL + target
    # Not build_absolute_uri(): its iri_to_uri() would re-quote the target we kept raw.
    return f"{request.scheme}://{request.get_host()}{target}"


def _request_target(request: HttpRequest) -> str:
    """Path and query as they were on the request line; request.get_full_path() re-quotes."""
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")  # gunicorn, uWSGI
    if raw and not raw.startswith("/"):  # absolute-form request line: keep path and query
        parts = urlsplit(raw)
        raw = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not raw:
        query = request.META.get("QUERY_STRING", "")
        raw = escape_uri_path(request.path) + (f"?{query}" if query else "")
    return _wsgi_text(raw)


def _wsgi_text(value: str) -> str:
    # WSGI servers hand over the request line as latin-1; HubSpot signed UTF-8 text.
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return value
