"""HubSpot client (CRM v3, owners, Forms): the only place Leadline talks to HubSpot.

Every call passes the shared throttle first (search calls also a stricter search bucket), so
all worker processes together stay under HubSpot's limits. Errors are classified as HubSpot
documents them (https://developers.hubspot.com/docs/api-reference/error-handling):

- TransientHubSpotError, retry later: timeouts, connection errors, 5xx (502/503/504/521
  included), unreadable answers, 429 TEN_SECONDLY_ROLLING (after Retry-After), 423 Locked
  (after about 2 s) and 477 Migration in Progress (after its Retry-After);
- HubSpotPaused (a TransientHubSpotError), not an attempt: a 429 whose policyName is DAILY
  halts every HubSpot call in every worker until the daily window resets (midnight in the
  account's time zone); calls during the halt fail at once with the seconds left;
- PermanentHubSpotError, retrying will not help: other 4xx.

Each keeps HubSpot's own message and category. Every value put into a URL path is quoted, so
a payload can never steer a request to another endpoint.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import requests

from workflows.hubspot.throttle import (
    ThrottleHalted,
    ThrottleTimeout,
    ThrottleUnavailable,
    TokenBucket,
)

logger = logging.getLogger("leadline.hubspot")

CONTACT_PROPERTIES = (
    "email",
    "firstname",
    "lastname",
    "phone",
    "company",
    "lifecyclestage",
    "hubspot_owner_id",
)
TASK_PROPERTIES = (
    "hs_task_subject",
    "hs_task_body",
    "hs_task_status",
    "hs_task_priority",
    "hs_task_type",
    "hs_timestamp",
    "hubspot_owner_id",
)
TASK_TO_CONTACT = 204
NOTE_TO_CONTACT = 202
GENERAL_BUCKET = "hubspot:general"
SEARCH_BUCKET = "hubspot:search"
# When HubSpot says this few calls are left in its window, back off a little even though our
# own throttle agrees: another app or a script may share the same private-app budget.
LOW_REMAINING = 3
FALLBACK_RETRY_AFTER = 1.0
#: HubSpot: "423 Locked … wait about 2 seconds and retry".
LOCKED_RETRY_AFTER = 2.0
_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")


class HubSpotError(Exception):
    """A HubSpot call failed. `message` is HubSpot's own when it sent one."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        category: str = "",
        retry_after: float | None = None,
    ) -> None:
        # "HubSpot 502: Bad Gateway" when there is no category (an HTML page from a proxy).
        super().__init__(
            " ".join(filter(None, ["HubSpot", str(status or "request"), category])) + f": {message}"
        )
        self.status = status
        self.category = category
        self.message = message
        self.retry_after = retry_after


class TransientHubSpotError(HubSpotError):
    """Retry later (after `retry_after` seconds when HubSpot said so)."""

    retryable = True


class HubSpotPaused(TransientHubSpotError):
    """HubSpot's daily limit is spent: no call may go for `retry_after` seconds.

    Not a failed attempt; callers reschedule for when the daily window resets."""


class PermanentHubSpotError(HubSpotError):
    """The request itself is wrong (or the object is gone); retrying will not help."""

    retryable = False


def task_marker_token(marker: str) -> str:
    """The search token embedded in a task body for `marker`.

    HubSpot's CONTAINS_TOKEN splits text on punctuation, so a caller's marker such as
    "lead-42/follow-up" would not match as one token; a hex digest always does.
    """
    return "leadline" + hashlib.sha256(marker.encode()).hexdigest()[:24]


def path_segment(value: object) -> str:
    """One URL path segment: "/", "?", "#", ".." and the rest cannot leave it."""
    return quote(str(value), safe="")


def seconds_until_daily_reset(time_zone: str, now: datetime | None = None) -> float:
    """Seconds until the next midnight in the HubSpot account's time zone, when HubSpot resets
    its daily API limit (https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines)."""
    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(time_zone))
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (midnight - local).total_seconds())


def _hubspot_timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("HubSpot timestamps need an aware datetime (use django.utils.timezone)")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _contact_association(contact_id: str, type_id: int) -> list[dict[str, Any]]:
    return [
        {
            "to": {"id": str(contact_id)},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
        }
    ]


class HubSpotClient:
    """Typed calls to the HubSpot CRM v3 API, throttled and classified.

    One instance per process (its requests.Session pools connections); the throttle is what
    processes share.
    """

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        timeout: tuple[float, float] = (3.05, 10.0),
        throttle: TokenBucket | None = None,
        general_rate: float = 10.0,
        search_rate: float = 4.0,
        throttle_timeout: float = 30.0,
        daily_pause: Callable[[], float] = lambda: seconds_until_daily_reset("UTC"),
        locked_retry_after: float = LOCKED_RETRY_AFTER,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.daily_pause = daily_pause
        self.locked_retry_after = locked_retry_after
        self.timeout = timeout
        self.throttle = throttle or TokenBucket(None)
        self.general_rate = general_rate
        self.search_rate = search_rate
        self.throttle_timeout = throttle_timeout
        self.session = requests.Session()
        # requests reads the proxy variables, ~/.netrc and the CA-bundle variables again on
        # every call (trust_env): a scan of the whole environment per call, a tenth of a
        # workflow's CPU (docs/performance.md). This client calls one host, so they are
        # resolved once, here, with the same meaning.
        self.session.proxies = requests.utils.get_environ_proxies(self.base_url)
        self.session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        self.session.trust_env = False
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": "leadline/0.1",
            }
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HubSpotClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- contacts --------------------------------------------------------------------------
    def search_contact_by_email(
        self, email: str, properties: Sequence[str] = CONTACT_PROPERTIES
    ) -> dict[str, Any] | None:
        """The contact with this email, or None. Search lags writes by a few seconds."""
        body = {
            "filterGroups": [
                {"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}
            ],
            "properties": list(properties),
            "limit": 1,
        }
        found = self._call("POST", "/crm/v3/objects/contacts/search", "contacts.search", json=body)
        results = (found or {}).get("results") or []
        return results[0] if results else None

    def get_contact(
        self, contact_id: str, properties: Sequence[str] = CONTACT_PROPERTIES
    ) -> dict[str, Any]:
        """The contact; PermanentHubSpotError (status 404) when it does not exist."""
        return self._call(
            "GET",
            f"/crm/v3/objects/contacts/{path_segment(contact_id)}",
            "contacts.get",
            params={"properties": list(properties)},
        )

    def create_contact(self, properties: dict[str, Any]) -> dict[str, Any]:
        """Create a contact; idempotent by email: a conflict returns the existing contact."""
        try:
            return self._call(
                "POST",
                "/crm/v3/objects/contacts",
                "contacts.create",
                json={"properties": properties},
            )
        except PermanentHubSpotError as error:
            match = _EXISTING_ID.search(error.message) if error.status == 409 else None
            if match is None:
                raise
            return self.get_contact(match.group(1))

    # --- engagements -----------------------------------------------------------------------
    def create_task(
        self,
        *,
        contact_id: str,
        owner_id: str | None,
        subject: str,
        body: str,
        due_at: datetime,
        marker: str,
        priority: str = "MEDIUM",
        task_type: str = "TODO",
    ) -> dict[str, Any]:
        """Create a task on the contact. Not idempotent by itself: look for the marker first
        with find_task_by_marker (and mind the search lag)."""
        properties = {
            "hs_timestamp": _hubspot_timestamp(due_at),
            "hs_task_subject": subject,
            "hs_task_body": f"{body}\n\nLeadline reference: {task_marker_token(marker)}",
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": priority,
            "hs_task_type": task_type,
        }
        if owner_id:
            properties["hubspot_owner_id"] = str(owner_id)
        payload = {
            "properties": properties,
            "associations": _contact_association(contact_id, TASK_TO_CONTACT),
        }
        return self._call("POST", "/crm/v3/objects/tasks", "tasks.create", json=payload)

    def find_task_by_marker(self, marker: str) -> dict[str, Any] | None:
        """The task created with this marker, or None (also None while search lags)."""
        return self._find_by_marker("tasks", "hs_task_body", marker, list(TASK_PROPERTIES))

    def create_note(
        self, *, contact_id: str, body: str, marker: str, timestamp: datetime | None = None
    ) -> dict[str, Any]:
        """Create a note on the contact. Not idempotent by itself: look for the marker first
        with find_note_by_marker (and mind the search lag)."""
        properties = {
            "hs_note_body": f"{body}\n\nLeadline reference: {task_marker_token(marker)}",
            "hs_timestamp": _hubspot_timestamp(timestamp or datetime.now(UTC)),
        }
        payload = {
            "properties": properties,
            "associations": _contact_association(contact_id, NOTE_TO_CONTACT),
        }
        return self._call("POST", "/crm/v3/objects/notes", "notes.create", json=payload)

    def find_note_by_marker(self, marker: str) -> dict[str, Any] | None:
        """The note created with this marker, or None (also None while search lags)."""
        return self._find_by_marker("notes", "hs_note_body", marker, ["hs_note_body"])

    def _find_by_marker(
        self, objects: str, body_property: str, marker: str, properties: list[str]
    ) -> dict[str, Any] | None:
        token = task_marker_token(marker)
        body = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": body_property,
                            "operator": "CONTAINS_TOKEN",
                            "value": token,
                        }
                    ]
                }
            ],
            "properties": properties,
            "limit": 10,
        }
        found = self._call(
            "POST",
            f"/crm/v3/objects/{path_segment(objects)}/search",
            f"{objects}.search",
            json=body,
        )
        for item in (found or {}).get("results") or []:
            if token in (item.get("properties", {}).get(body_property) or ""):
                return item
        return None

    # --- owners ----------------------------------------------------------------------------
    def get_owner(self, owner_id: str) -> dict[str, Any] | None:
        """The owner (id, email, firstName, lastName, userId, archived), or None when unknown.

        A deactivated user's owner is archived: HubSpot answers it only to `archived=true`
        (404 without), so a 404 is asked once more that way. Such an owner comes back with
        `"archived": true` (and no userId); it cannot be given new records."""
        path = f"/crm/v3/owners/{path_segment(owner_id)}"
        for params in (None, {"archived": "true"}):
            try:
                return self._call("GET", path, "owners.get", params=params)
            except PermanentHubSpotError as error:
                if error.status != 404:
                    raise
        return None

    # --- other APIs (workflows/hubspot/forms.py) ------------------------------------------
    def get(self, path: str, endpoint: str, params: dict[str, Any] | None = None) -> Any:
        """GET `path` (its variable parts quoted with path_segment), throttled and classified
        like every other call; `endpoint` names it in logs."""
        return self._call("GET", path, endpoint, params=params)

    # --- transport -------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        self._wait_for_budget(endpoint.endswith(".search"))
        started = time.monotonic()
        status: int | str = "error"
        try:
            response = self.session.request(
                method, self.base_url + path, json=json, params=params, timeout=self.timeout
            )
            status = response.status_code
        except requests.Timeout as error:
            status = "timeout"
            raise TransientHubSpotError(str(error), category="TIMEOUT") from error
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
            status = "connection-error"
            raise TransientHubSpotError(str(error), category="CONNECTION_ERROR") from error
        except requests.RequestException as error:
            raise PermanentHubSpotError(str(error), category="REQUEST_INVALID") from error
        finally:
            # HubSpot failing or pushing back (5xx, 429, no answer) is a warning; a 404 or 409
            # the client expects and handles (an unknown owner, an existing contact) is not.
            failed = not isinstance(status, int) or status >= 500 or status == 429
            logger.log(
                logging.WARNING if failed else logging.INFO,
                "hubspot %s %s endpoint=%s status=%s duration_ms=%d",
                method,
                path,
                endpoint,
                status,
                (time.monotonic() - started) * 1000,
            )
        self._respect_remaining(response)
        return self._parse(response)

    def _wait_for_budget(self, search: bool) -> None:
        try:
            if search:
                self.throttle.acquire(
                    SEARCH_BUCKET, rate=self.search_rate, capacity=1, timeout=self.throttle_timeout
                )
            # Capacity 1: workers need a steady pace, not bursts that could overrun a rolling
            # ten-second window.
            self.throttle.acquire(
                GENERAL_BUCKET, rate=self.general_rate, capacity=1, timeout=self.throttle_timeout
            )
        except ThrottleHalted as error:
            raise HubSpotPaused(
                str(error), status=429, category="DAILY", retry_after=error.seconds
            ) from error
        except ThrottleTimeout as error:
            raise TransientHubSpotError(str(error), category="THROTTLED") from error
        except ThrottleUnavailable as error:
            raise TransientHubSpotError(str(error), category="THROTTLE_UNAVAILABLE") from error

    def _pause(self, seconds: float) -> None:
        self._tell_throttle(
            lambda: self.throttle.pause(GENERAL_BUCKET, seconds),
            "hubspot throttle unavailable; could not pause %.2fs",
            seconds,
        )

    def _tell_throttle(self, hint: Callable[[], object], *could_not: object) -> None:
        """Give every process's throttle a hint (pause, halt); log ``could_not`` without Redis."""
        try:
            hint()
        except ThrottleUnavailable:
            # The caller still gets HubSpot's own error; only other processes miss the hint.
            logger.warning(*could_not)

    def _respect_remaining(self, response: requests.Response) -> None:
        headers = response.headers
        try:
            remaining = int(headers["X-HubSpot-RateLimit-Remaining"])
            maximum = int(headers.get("X-HubSpot-RateLimit-Max", 100))
            interval_ms = int(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", 10_000))
        except (KeyError, ValueError):
            return
        if remaining <= LOW_REMAINING and response.status_code != 429:
            # Roughly the time for the rolling window to free the slots we are short of.
            slot = interval_ms / 1000 / max(1, maximum)
            self._pause(min(1.0, slot * (LOW_REMAINING + 1 - remaining)))

    def _parse(self, response: requests.Response) -> Any:
        status = response.status_code
        if status == 204:
            return {}
        try:
            body = response.json()
        except ValueError:
            body = None
            if status < 300:
                raise TransientHubSpotError(
                    "HubSpot answered with a body that is not JSON",
                    status=status,
                    category="MALFORMED_RESPONSE",
                ) from None
        if status < 300:
            return body
        details = body if isinstance(body, dict) else {}
        message = str(details.get("message") or response.reason or "no message")
        category = str(details.get("category") or details.get("errorType") or "")
        if status == 429 and str(details.get("policyName", "")).upper() == "DAILY":
            seconds = self.daily_pause()
            self._tell_throttle(
                lambda: self.throttle.halt(seconds),
                "hubspot throttle unavailable; could not halt for the daily limit",
            )
            logger.error("hubspot daily limit reached; every call halted for %.0fs", seconds)
            raise HubSpotPaused(message, status=status, category="DAILY", retry_after=seconds)
        if status in _RETRY_LATER:
            default_category, wait_from_header, pause_everyone = _RETRY_LATER[status]
            retry_after = (
                _retry_after(response.headers.get("Retry-After"))
                if wait_from_header
                else self.locked_retry_after
            )
            if pause_everyone:
                self._pause(retry_after)
            raise TransientHubSpotError(
                message,
                status=status,
                category=category or default_category,
                retry_after=retry_after,
            )
        if status >= 500 or status == 408:
            raise TransientHubSpotError(message, status=status, category=category)
        raise PermanentHubSpotError(message, status=status, category=category)


#: HubSpot's "wait, then retry" answers (after a 429 DAILY, handled first): the category when
#: the body names none; whether the wait is the Retry-After header (else locked_retry_after,
#: HUBSPOT_LOCKED_RETRY_SECONDS: a 423 sends none); whether every process pauses meanwhile (a
#: 429 is the whole app's rate limit).
_RETRY_LATER: dict[int, tuple[str, bool, bool]] = {
    429: ("RATE_LIMIT", True, True),
    423: ("LOCKED", False, False),
    477: ("MIGRATION_IN_PROGRESS", True, False),
}


def _retry_after(header: str | None) -> float:
    try:
        return max(0.0, float(header)) if header else FALLBACK_RETRY_AFTER
    except ValueError:
        return FALLBACK_RETRY_AFTER


def client_from_settings(*, base_url: str = "", token: str = "") -> HubSpotClient | None:
    """A client configured from Django settings, or None when no access token is set.
    ``base_url`` and ``token`` replace HUBSPOT_API_BASE_URL and HUBSPOT_ACCESS_TOKEN
    (reconcile_forms by hand under `make run`: its local sandbox).

    The throttle is one per process (see process_throttle): every client in a worker shares
    its budget, across threads and, with a Redis broker, across processes.
    """
    from django.conf import settings

    token = token or settings.HUBSPOT_ACCESS_TOKEN
    if not token:
        return None
    return HubSpotClient(
        base_url=base_url or settings.HUBSPOT_API_BASE_URL,
        token=token,
        timeout=(3.05, settings.HUBSPOT_TIMEOUT_SECONDS),
        throttle=process_throttle(settings.CELERY_BROKER_URL),
        general_rate=settings.HUBSPOT_RATE_LIMIT_PER_10S / 10,
        search_rate=float(settings.HUBSPOT_SEARCH_RATE_PER_S),
        daily_pause=daily_pause_from_settings,
        locked_retry_after=settings.HUBSPOT_LOCKED_RETRY_SECONDS,
    )


_kept = threading.local()


def kept_client() -> HubSpotClient | None:
    """The HubSpot client to use from settings (None without an access token): one per
    thread, kept from one call to the next, so its kept-alive connection saves a TCP (and,
    against HubSpot, TLS) handshake and a session per workflow, task or run. A new one is
    made when the settings it was made from change. Callers never close it."""
    from django.conf import settings

    key = (
        settings.HUBSPOT_ACCESS_TOKEN,
        settings.HUBSPOT_API_BASE_URL,
        settings.HUBSPOT_TIMEOUT_SECONDS,
        settings.HUBSPOT_RATE_LIMIT_PER_10S,
        settings.HUBSPOT_SEARCH_RATE_PER_S,
        settings.HUBSPOT_LOCKED_RETRY_SECONDS,
        settings.CELERY_BROKER_URL,
    )
    kept = getattr(_kept, "client", None)
    if kept is not None and kept[0] == key:
        return kept[1]
    if kept is not None and kept[1] is not None:
        kept[1].close()
    client = client_from_settings()
    _kept.client = (key, client)
    return client


def daily_pause_from_settings() -> float:
    """HUBSPOT_DAILY_PAUSE_SECONDS when set, else until midnight in the account's time zone:
    HUBSPOT_ACCOUNT_TIME_ZONE when set, else the one HubSpot named (remembered beforehand:
    no call goes to HubSpot here), else UTC (workflows/hubspot/account.py)."""
    from django.conf import settings

    from workflows.hubspot.account import daily_reset_time_zone

    if settings.HUBSPOT_DAILY_PAUSE_SECONDS:
        return settings.HUBSPOT_DAILY_PAUSE_SECONDS
    zone, source = daily_reset_time_zone()
    logger.info("hubspot daily limit resets at midnight %s (time zone: %s)", zone, source)
    return seconds_until_daily_reset(zone)


def calls_halted_for() -> float:
    """Seconds left of the daily-limit halt shared by every worker; 0.0 when calls may go
    (and when Redis cannot say)."""
    from django.conf import settings

    try:
        return process_throttle(settings.CELERY_BROKER_URL).halted_for()
    except ThrottleUnavailable:
        return 0.0


@functools.cache
def process_throttle(broker_url: str) -> TokenBucket:
    """The process's token buckets: Redis-backed for a redis:// broker, in-process otherwise."""
    return TokenBucket(broker_url)
