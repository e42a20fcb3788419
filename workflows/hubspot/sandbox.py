"""A local imitation of HubSpot's API, served over real HTTP, that the official SDK can use.

It covers what `workflows/hubspot/client.py` calls and what HubSpot's Python SDK reaches for
the same objects: contacts list/get/create/search, tasks and notes create/get/search, owners
get/list (an archived owner, HubSpot's deactivated user, only with `archived=true`), the v4
associations read, account details (its `timeZone` is config `time_zone`), forms get/list
(marketing v3) and form submissions (form-integrations v1, newest first, `limit` ≤ 50, `after`
paging). Bearer auth, rate-limit
headers (not on search answers, as HubSpot), an optional enforced rolling limit, search-index
lag and injectable faults. Repeated query parameters are read as lists (`?properties=a&
properties=b`), as the SDK sends them. New contacts get no owner unless an owner rule
(config `owner_rules`: [{"email_domain": "acme.test" or "*", "owner_id": "1001"}]) says so.
Every request is recorded so tests can assert exactly what was sent. `/__sandbox__/` is an
unauthenticated control API for processes that cannot reach the Python object (Celery
workers, browsers, shell scripts).

Fault rules, per endpoint key (the third column of ROUTES, e.g. `contacts.search`,
`tasks.create`, `owners.get`, `forms.submissions`) or `*`:

    {"kind": "status", "status": 500, "times": 1, "message": ..., "category": ...,
     "retry_after": 1}                 # 429 with Retry-After: 1
    {"kind": "status", "status": 423}                  # Locked (HubSpot: retry after ~2 s)
    {"kind": "status", "status": 477, "retry_after": 1}  # Migration in progress
    {"kind": "status", "status": 429, "policy": "DAILY"}  # the daily limit is spent
    {"kind": "latency", "ms": 200, "times": null}      # delays, then answers normally
    {"kind": "timeout", "seconds": 2, "times": 1, "then": "answer" | "close"}
    {"kind": "malformed", "times": 1}                  # 200 with a body that is not JSON
    {"kind": "html", "status": 502, "times": 1}        # an edge proxy's HTML error page
    {"kind": "rate", "probability": 0.3, "choices": [<rule>, ...], "times": null}

`times` counts how often a rule fires (null = forever). Latency rules add up; the first
other live rule for the endpoint (then for `*`) decides the answer.

Control API (JSON in, JSON out): GET requests | GET state | POST reset |
POST faults {"faults": {key: rule-or-rules}} (replaces all) |
POST contacts {"contacts": [{"email": ..., "owner_id": ..., "id": ...}]} |
POST owners {"owners": [{"id", "email", "firstName", "lastName", "userId", "archived"}]} |
POST forms {"forms": [{"id", "name"}]} |
POST submissions {"form_id": ..., "submissions": [{"submittedAt", "values", "conversionId"?,
"pageUrl"?}]} |
POST config {"latency_ms", "index_lag_seconds", "rate_limit", "rate_limit_interval_ms",
"token", "owner_rules", "time_zone"}.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.sandbox_server import SandboxHTTPServer, ThreadedSandbox

DEFAULT_OWNER = {
    "id": "1001",
    "email": "avery@example.com",
    "firstName": "Avery",
    "lastName": "Owner",
    "userId": 2001,
}
DEFAULT_FORM = {"id": "4f2b7c1e-9a3d-4b8e-8f6a-2c1d0e9b7a55", "name": "Contact us"}
SUBMISSIONS_MAX_LIMIT = 50  # form-integrations v1: "limit … max 50"
OBJECT_TYPE_IDS = {"contacts": "0-1", "notes": "0-46", "tasks": "0-27"}
CONTACT_DEFAULT_PROPERTIES = ("createdate", "email", "firstname", "lastmodifieddate", "lastname")
TASK_DEFAULT_PROPERTIES = ("hs_createdate", "hs_lastmodifieddate")
NOTE_DEFAULT_PROPERTIES = ("hs_createdate", "hs_lastmodifieddate")
DEFAULTS = {
    "contacts": CONTACT_DEFAULT_PROPERTIES,
    "tasks": TASK_DEFAULT_PROPERTIES,
    "notes": NOTE_DEFAULT_PROPERTIES,
}
TASK_ENUMS = {
    "hs_task_status": {"NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"},
    "hs_task_priority": {"NONE", "LOW", "MEDIUM", "HIGH"},
    "hs_task_type": {"EMAIL", "CALL", "TODO", "LINKED_IN", "LINKEDIN"},
}
# associationTypeId for "<object> to contact", HUBSPOT_DEFINED.
CONTACT_ASSOCIATION_TYPE = {"tasks": 204, "notes": 202}
RATE_LIMIT_HEADER_DEFAULT = 100
DAILY_LIMIT = 250_000
REQUEST_LOG_SIZE = 10_000  # a long-running dev sandbox must not grow without bound
FAULT_KINDS = {"status", "latency", "timeout", "malformed", "html", "rate"}


class ApiError(Exception):
    """An error answer, in HubSpot's error body shape."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})
        self.body = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
            **extra,
        }


Query = Mapping[str, list[str]]


@dataclass
class RecordedRequest:
    method: str
    path: str
    #: Every query parameter as the list of its values (HubSpot reads repeats as a list).
    query: dict[str, list[str]]
    json: Any
    headers: dict[str, str]
    time: float
    endpoint: str
    status: int | None = None
    #: The injected fault that decided this call ("timeout", "malformed", "status 500" …).
    fault: str = ""


@dataclass
class _Stored:
    object: dict[str, Any]
    created: float  # time.monotonic(); search sees the object once index lag has passed


@dataclass
class SandboxConfig:
    token: str | None = None
    latency_ms: int = 0
    index_lag_seconds: float = 0.0
    rate_limit: int | None = None
    rate_limit_interval_ms: int = 10_000
    #: [{"email_domain": "acme.test" | "*", "owner_id": "1001"}]: who owns a new contact.
    owner_rules: list[dict[str, str]] = field(default_factory=list)
    portal_id: int = 62515
    #: The account's time zone (IANA name), as GET /account-info/v3/details names it.
    time_zone: str = "UTC"


@dataclass
class SandboxState:
    """Everything the sandbox knows. Guard every access with `lock`."""

    config: SandboxConfig
    lock: threading.RLock = field(default_factory=threading.RLock)
    contacts: dict[str, _Stored] = field(default_factory=dict)
    tasks: dict[str, _Stored] = field(default_factory=dict)
    notes: dict[str, _Stored] = field(default_factory=dict)
    owners: dict[str, dict[str, Any]] = field(default_factory=dict)
    forms: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: form id → submissions, each with "submittedAt" (ms); listed newest first.
    submissions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: (from kind, from id) → [(to kind, to id, associationTypeId)]
    associations: dict[tuple[str, str], list[tuple[str, str, int]]] = field(default_factory=dict)
    requests: deque[RecordedRequest] = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_SIZE))
    faults: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    window: deque[float] = field(default_factory=deque)
    daily_used: int = 0
    next_id: int = 100_001


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_timestamp(value: Any) -> str:
    """HubSpot accepts epoch milliseconds or ISO 8601 for datetime properties."""
    text = str(value).strip()
    if text.isdigit():
        moment = datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    else:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _one(query: Query, name: str) -> str | None:
    values = query.get(name) or []
    return values[-1] if values else None


def _listed(query: Query, name: str) -> list[str]:
    """A list parameter, sent repeated (`?p=a&p=b`, the SDK) or comma-joined (`?p=a,b`)."""
    return [item for value in query.get(name, []) for item in value.split(",") if item]


def _int_param(query: Query, name: str, default: int, *, maximum: int) -> int:
    raw = _one(query, name)
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ApiError(400, "VALIDATION_ERROR", f"{name} must be an integer") from None
    if not 0 < value <= maximum:
        raise ApiError(400, "VALIDATION_ERROR", f"{name} must be between 1 and {maximum}")
    return value


def _kind(name: str) -> str:
    """ "contact", "contacts" or "0-1" → "contacts"."""
    by_id = {v: k for k, v in OBJECT_TYPE_IDS.items()}
    kind = by_id.get(name) or (name if name.endswith("s") else name + "s")
    if kind not in OBJECT_TYPE_IDS:
        raise ApiError(400, "VALIDATION_ERROR", f"Unknown object type {name!r}")
    return kind


def _form_definition(form_id: str, name: str, **extra: Any) -> dict[str, Any]:
    """A form as the marketing v3 Forms API describes one (fields: email, names, message)."""
    now = _now_iso()

    def field_(name: str, label: str, field_type: str, required: bool) -> dict[str, Any]:
        entry = {
            "objectTypeId": "0-1",
            "name": name,
            "label": label,
            "required": required,
            "hidden": False,
            "fieldType": field_type,
            "dependentFields": [],
        }
        if field_type == "email":
            entry["validation"] = {"blockedEmailDomains": [], "useDefaultBlockList": False}
        return entry

    fields = [
        field_("email", "Email", "email", True),
        field_("firstname", "First name", "single_line_text", False),
        field_("lastname", "Last name", "single_line_text", False),
        field_("company", "Company", "single_line_text", False),
        field_("message", "Message", "multi_line_text", False),
    ]
    return {
        "id": form_id,
        "name": name,
        "formType": "hubspot",
        "createdAt": extra.get("createdAt", now),
        "updatedAt": extra.get("updatedAt", now),
        "archived": False,
        "fieldGroups": [
            {"groupType": "default_group", "richTextType": "text", "fields": [f]} for f in fields
        ],
        "configuration": {
            "language": "en",
            "cloneable": True,
            "postSubmitAction": {"type": "thank_you", "value": ""},
            "editable": True,
            "archivable": True,
            "recaptchaEnabled": False,
            "notifyContactOwner": False,
            "notifyRecipients": [],
            "createNewContactForNewEmail": False,
            "prePopulateKnownValues": True,
            "allowLinkToResetKnownValues": False,
            "lifecycleStages": [],
        },
        "displayOptions": {
            "renderRawHtml": False,
            "theme": "default_style",
            "submitButtonText": "Submit",
            "style": {
                "fontFamily": "arial, helvetica, sans-serif",
                "backgroundWidth": "100%",
                "labelTextColor": "#33475b",
                "labelTextSize": "14px",
                "helpTextColor": "#7C98B6",
                "helpTextSize": "11px",
                "legalConsentTextColor": "#33475b",
                "legalConsentTextSize": "14px",
                "submitColor": "#ff7a59",
                "submitAlignment": "left",
                "submitFontColor": "#ffffff",
                "submitSize": "12px",
            },
            "cssClass": "",
        },
        "legalConsentOptions": {"type": "none"},
    }


def _archived_param(query: Query) -> bool:
    raw = (_one(query, "archived") or "false").casefold()
    if raw not in ("true", "false"):
        raise ApiError(400, "VALIDATION_ERROR", f"archived must be true or false, got {raw!r}")
    return raw == "true"


def _tokens(value: str) -> set[str]:
    return {token for token in re.split(r"[^0-9a-z]+", value.casefold()) if token}


def _validate_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    if rule.get("kind") not in FAULT_KINDS:
        raise ValueError(f"fault kind must be one of {sorted(FAULT_KINDS)}, got {rule!r}")
    if rule["kind"] == "rate":
        for choice in rule.get("choices", []):
            _validate_rule(choice)
    return dict(rule)


class Sandbox:
    """The CRM behaviour, independent of HTTP. Thread-safe."""

    def __init__(self, config: SandboxConfig, *, seed: int | None = None) -> None:
        self.initial_config = config
        self.random = random.Random(seed)
        self.state = SandboxState(config=SandboxConfig(**asdict(config)))
        self.reset()

    # --- control ---------------------------------------------------------------------------
    def reset(self) -> None:
        with self.state.lock:
            self.state.config = SandboxConfig(**asdict(self.initial_config))
            for name in (
                "contacts",
                "tasks",
                "notes",
                "owners",
                "faults",
                "forms",
                "submissions",
                "associations",
            ):
                getattr(self.state, name).clear()
            self.state.requests.clear()
            self.state.window.clear()
            self.state.daily_used = 0
            self.state.next_id = 100_001
            self.seed_owner(**DEFAULT_OWNER)
            self.seed_form(**DEFAULT_FORM)

    def configure(self, **changes: Any) -> SandboxConfig:
        with self.state.lock:
            for name, value in changes.items():
                if not hasattr(self.state.config, name):
                    raise ValueError(f"unknown sandbox setting {name!r}")
                if name == "time_zone":
                    try:
                        ZoneInfo(value)
                    except (ZoneInfoNotFoundError, ValueError, TypeError):
                        raise ValueError(f"time_zone {value!r} is not an IANA time zone") from None
                setattr(self.state.config, name, value)
            return SandboxConfig(**asdict(self.state.config))

    def set_faults(self, faults: Mapping[str, Any]) -> None:
        """Replace all fault rules; values are one rule or a list of rules."""
        parsed = {
            key: [_validate_rule(rule) for rule in (rules if isinstance(rules, list) else [rules])]
            for key, rules in faults.items()
        }
        with self.state.lock:
            self.state.faults = parsed

    def add_fault(self, endpoint: str, rule: Mapping[str, Any]) -> None:
        with self.state.lock:
            self.state.faults.setdefault(endpoint, []).append(_validate_rule(rule))

    def seed_owner(
        self,
        *,
        id: str,
        email: str,
        firstName: str = "",
        lastName: str = "",
        userId: int | None = None,
        archived: bool = False,
    ) -> dict[str, Any]:
        """An owner; `archived` is a deactivated user's, which HubSpot answers only to
        `archived=true` and which has no `userId` (only `userIdIncludingInactive`)."""
        now = _now_iso()
        owner: dict[str, Any] = {
            "id": str(id),
            "email": email,
            "type": "PERSON",
            "firstName": firstName,
            "lastName": lastName,
            "createdAt": now,
            "updatedAt": now,
            "archived": bool(archived),
            "teams": [],
        }
        if userId is not None:
            owner["userIdIncludingInactive"] = userId
            if not archived:
                owner["userId"] = userId
        with self.state.lock:
            self.state.owners[owner["id"]] = owner
        return owner

    def seed_contact(
        self, properties: Mapping[str, Any] | None = None, *, id: str | None = None, **props: Any
    ) -> dict[str, Any]:
        """Store a contact that search already sees (seeded data is indexed). It has an owner
        only when given `hubspot_owner_id` or when an owner rule matches its email."""
        with self.state.lock:
            properties = {**(properties or {}), **props}
            owner = self._owner_by_rule(properties.get("email"))
            if owner and "hubspot_owner_id" not in properties:
                properties["hubspot_owner_id"] = owner
            stored = self._new_object(self.state.contacts, properties, id=id)
            stored.created = float("-inf")
            return json.loads(json.dumps(stored.object))

    def seed_form(self, *, id: str, name: str, **extra: Any) -> dict[str, Any]:
        """A form definition as GET /marketing/v3/forms/{id} answers it."""
        form = _form_definition(str(id), name, **extra)
        with self.state.lock:
            self.state.forms[form["id"]] = form
            self.state.submissions.setdefault(form["id"], [])
        return form

    def seed_submissions(
        self, form_id: str, submissions: Iterable[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Store submissions on a form (created when unknown) as the Forms API lists them."""
        added = []
        with self.state.lock:
            if form_id not in self.state.forms:
                self.seed_form(id=form_id, name=f"Form {form_id[:8]}")
            for item in submissions:
                values = [
                    {"name": str(v["name"]), "value": str(v.get("value", ""))}
                    | ({"objectTypeId": v["objectTypeId"]} if v.get("objectTypeId") else {})
                    for v in item.get("values", [])
                ]
                submission = {
                    "conversionId": str(item.get("conversionId") or uuid.uuid4()),
                    "submittedAt": int(item["submittedAt"]),
                    "values": values,
                    "pageUrl": str(item.get("pageUrl") or "https://www.example.com/contact"),
                }
                self.state.submissions[form_id].append(submission)
                added.append(dict(submission))
        return added

    def _owner_by_rule(self, email: Any) -> str | None:
        domain = str(email or "").rpartition("@")[2].casefold()
        for rule in self.state.config.owner_rules:
            wanted = str(rule.get("email_domain", "")).casefold()
            if wanted == "*" or (domain and wanted == domain):
                return str(rule["owner_id"])
        return None

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.state.lock:
            return list(self.state.requests)

    def snapshot(self) -> dict[str, Any]:
        with self.state.lock:
            return {
                "config": asdict(self.state.config),
                "contacts": [s.object for s in self.state.contacts.values()],
                "tasks": [s.object for s in self.state.tasks.values()],
                "notes": [s.object for s in self.state.notes.values()],
                "owners": list(self.state.owners.values()),
                "forms": list(self.state.forms.values()),
                "submissions": {k: list(v) for k, v in self.state.submissions.items()},
                "faults": self.state.faults,
            }

    # --- request pipeline ------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> None:
        expected = self.state.config.token
        scheme, _, token = (authorization or "").partition(" ")
        if scheme != "Bearer" or not token.strip() or (expected is not None and token != expected):
            raise ApiError(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )

    def count_call(self) -> dict[str, str]:
        """Count a call against the rolling window; raise 429 when over an enforced limit."""
        with self.state.lock:
            limit = self.state.config.rate_limit
            over = limit is not None and len(self._window()) >= limit
            if not over:
                self.state.window.append(time.monotonic())
                self.state.daily_used += 1
            headers = self.rate_limit_headers()
        if over:
            raise ApiError(
                429,
                "RATE_LIMITS",
                "You have reached your ten_secondly_rolling limit.",
                errorType="RATE_LIMIT",
                policyName="TEN_SECONDLY_ROLLING",
                headers=headers,
            )
        return headers

    def rate_limit_headers(self) -> dict[str, str]:
        with self.state.lock:
            config = self.state.config
            limit = config.rate_limit or RATE_LIMIT_HEADER_DEFAULT
            return {
                "X-HubSpot-RateLimit-Max": str(limit),
                "X-HubSpot-RateLimit-Remaining": str(max(0, limit - len(self._window()))),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(config.rate_limit_interval_ms),
                "X-HubSpot-RateLimit-Daily": str(DAILY_LIMIT),
                "X-HubSpot-RateLimit-Daily-Remaining": str(DAILY_LIMIT - self.state.daily_used),
            }

    def _window(self) -> deque[float]:
        """The rolling window, after dropping calls older than the interval. Hold the lock."""
        cutoff = time.monotonic() - self.state.config.rate_limit_interval_ms / 1000
        while self.state.window and self.state.window[0] <= cutoff:
            self.state.window.popleft()
        return self.state.window

    def take_faults(self, endpoint: str) -> tuple[float, dict[str, Any] | None]:
        """Consume the rules that fire for this call: (latency seconds, deciding rule)."""
        latency = 0.0
        decided: dict[str, Any] | None = None
        with self.state.lock:
            latency += self.state.config.latency_ms / 1000
            for key in (endpoint, "*"):
                for rule in self.state.faults.get(key, []):
                    if rule.get("times") is not None and rule["times"] <= 0:
                        continue
                    if rule["kind"] == "latency":
                        latency += rule.get("ms", 0) / 1000
                    elif decided is None:
                        decided = self._fire(rule)
                        if decided is None:
                            continue  # a "rate" rule that did not fire this time
                    else:
                        continue
                    if rule.get("times") is not None:
                        rule["times"] -= 1
        return latency, decided

    def _fire(self, rule: dict[str, Any]) -> dict[str, Any] | None:
        if rule["kind"] != "rate":
            return rule
        if self.random.random() >= rule.get("probability", 0.0) or not rule.get("choices"):
            return None
        return dict(self.random.choice(rule["choices"]))

    def record(self, entry: RecordedRequest) -> None:
        with self.state.lock:
            self.state.requests.append(entry)

    # --- CRM endpoints ---------------------------------------------------------------------
    def _new_object(
        self, table: dict[str, _Stored], properties: Mapping[str, Any], *, id: str | None = None
    ) -> _Stored:
        now = _now_iso()
        if id is None:
            id = str(self.state.next_id)
            self.state.next_id += 1
        create_key = "createdate" if table is self.state.contacts else "hs_createdate"
        modified_key = "lastmodifieddate" if table is self.state.contacts else "hs_lastmodifieddate"
        props = {k: None if v is None else str(v) for k, v in properties.items()}
        props.update({"hs_object_id": str(id), create_key: now, modified_key: now})
        obj = {"id": str(id), "properties": props, "createdAt": now, "updatedAt": now}
        obj["archived"] = False
        stored = _Stored(object=obj, created=time.monotonic())
        table[str(id)] = stored
        return stored

    def _view(
        self, obj: dict[str, Any], requested: Iterable[str] | None, defaults: Iterable[str]
    ) -> dict[str, Any]:
        names = list(requested) if requested else list(defaults)
        for always in ("hs_object_id", "createdate", "lastmodifieddate", "hs_createdate"):
            if always in obj["properties"] and always not in names:
                names.append(always)
        view = {k: v for k, v in obj.items() if k != "associations"}
        view["properties"] = {name: obj["properties"].get(name) for name in names}
        return json.loads(json.dumps(view))

    def get_object(self, kind: str, object_id: str, query: Query) -> tuple[int, Any]:
        """GET /crm/v3/objects/{kind}/{id}; `properties` and `associations` may repeat."""
        with self.state.lock:
            stored = getattr(self.state, kind).get(object_id)
            if stored is None:
                raise ApiError(404, "OBJECT_NOT_FOUND", "resource not found")
            view = self._view(stored.object, _listed(query, "properties"), DEFAULTS[kind])
            self._add_associations(view, kind, object_id, _listed(query, "associations"))
            return 200, view

    def list_objects(self, kind: str, query: Query) -> tuple[int, Any]:
        """GET /crm/v3/objects/{kind}: a page in id order, `after` the last id seen."""
        limit = _int_param(query, "limit", 10, maximum=100)
        after = _one(query, "after")
        with self.state.lock:
            table = getattr(self.state, kind)
            ids = sorted(table, key=int)
            if after:
                ids = [i for i in ids if int(i) > int(after)]
            page = ids[:limit]
            results = []
            for object_id in page:
                view = self._view(
                    table[object_id].object, _listed(query, "properties"), DEFAULTS[kind]
                )
                self._add_associations(view, kind, object_id, _listed(query, "associations"))
                results.append(view)
        answer: dict[str, Any] = {"results": results}
        if len(ids) > limit:
            answer["paging"] = {"next": {"after": page[-1], "link": f"?after={page[-1]}"}}
        return 200, answer

    def _add_associations(
        self, view: dict[str, Any], kind: str, object_id: str, wanted: list[str]
    ) -> None:
        linked: dict[str, list[dict[str, str]]] = {}
        for to_kind, to_id, _type_id in self.state.associations.get((kind, object_id), []):
            if to_kind in wanted:
                linked.setdefault(to_kind, []).append(
                    {"id": to_id, "type": f"{kind[:-1]}_to_{to_kind[:-1]}"}
                )
        if linked:
            view["associations"] = {k: {"results": v} for k, v in linked.items()}

    def get_associations(
        self, from_kind: str, object_id: str, to_kind: str, query: Query
    ) -> tuple[int, Any]:
        """GET /crm/v4/objects/{from}/{id}/associations/{to}."""
        from_kind, to_kind = _kind(from_kind), _kind(to_kind)
        limit = _int_param(query, "limit", 500, maximum=500)
        with self.state.lock:
            if object_id not in getattr(self.state, from_kind):
                raise ApiError(404, "OBJECT_NOT_FOUND", "resource not found")
            linked = [
                (to_id, type_id)
                for kind, to_id, type_id in self.state.associations.get((from_kind, object_id), [])
                if kind == to_kind
            ]
        results = [
            {
                "toObjectId": int(to_id),
                "associationTypes": [
                    {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}
                ],
            }
            for to_id, type_id in linked[:limit]
        ]
        return 200, {"results": results}

    def get_note(self, note_id: str, query: Query) -> tuple[int, Any]:
        return self.get_object("notes", note_id, query)

    def create_contact(self, body: Any) -> tuple[int, Any]:
        properties = self._properties(body)
        email = (properties.get("email") or "").strip()
        if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                "Property values were not valid: "
                + json.dumps(
                    [
                        {
                            "isValid": False,
                            "message": f"Email address {email} is invalid",
                            "error": "INVALID_EMAIL",
                            "name": "email",
                        }
                    ]
                ),
            )
        with self.state.lock:
            for stored in self.state.contacts.values():
                existing = stored.object["properties"].get("email") or ""
                if email and existing.casefold() == email.casefold():
                    raise ApiError(
                        409,
                        "CONFLICT",
                        f"Contact already exists. Existing ID: {stored.object['id']}",
                    )
            owner = self._owner_by_rule(email)
            if owner and not properties.get("hubspot_owner_id"):
                properties["hubspot_owner_id"] = owner
            stored = self._new_object(self.state.contacts, properties)
            return 201, json.loads(json.dumps(stored.object))

    def create_engagement(self, kind: str, body: Any) -> tuple[int, Any]:
        properties = self._properties(body)
        if not properties.get("hs_timestamp"):
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                'Property values were not valid: [{"isValid":false,"message":"hs_timestamp is '
                'required","error":"REQUIRED_FIELD","name":"hs_timestamp"}]',
            )
        try:
            properties["hs_timestamp"] = _parse_timestamp(properties["hs_timestamp"])
        except ValueError:
            raise ApiError(
                400, "VALIDATION_ERROR", f"hs_timestamp {properties['hs_timestamp']!r} is invalid"
            ) from None
        if kind == "tasks":
            for name, allowed in TASK_ENUMS.items():
                if properties.get(name) is not None and properties[name] not in allowed:
                    raise ApiError(
                        400,
                        "VALIDATION_ERROR",
                        f"Property values were not valid: {properties[name]!r} was not one of "
                        f"the allowed options for {name}: {sorted(allowed)}",
                    )
        with self.state.lock:
            owner = properties.get("hubspot_owner_id")
            known = self.state.owners.get(str(owner)) if owner else None
            # A deactivated user's (archived) owner cannot be given new records either.
            if owner and (known is None or known["archived"]):
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    f"Property values were not valid: {owner} is not a valid owner id",
                )
            contact_ids = self._associations(kind, body.get("associations") or [])
            table = self.state.tasks if kind == "tasks" else self.state.notes
            stored = self._new_object(table, properties)
            type_id = CONTACT_ASSOCIATION_TYPE[kind]
            object_id = stored.object["id"]
            for contact_id in contact_ids:
                self.state.associations.setdefault((kind, object_id), []).append(
                    ("contacts", contact_id, type_id)
                )
                # HubSpot's contact → task/note types are the reverse labels (203 / 201).
                self.state.associations.setdefault(("contacts", contact_id), []).append(
                    (kind, object_id, type_id - 1)
                )
            # Kept on the stored object for tests reading the sandbox's state; like HubSpot's,
            # the create answer (and a read that asks for none) carries no `associations`.
            stored.object["associations"] = {
                "contacts": {
                    "results": [{"id": i, "type": f"{kind[:-1]}_to_contact"} for i in contact_ids]
                }
            }
            answer = {k: v for k, v in stored.object.items() if k != "associations"}
            return 201, json.loads(json.dumps(answer))

    def _associations(self, kind: str, associations: Any) -> list[str]:
        contact_ids: list[str] = []
        if not isinstance(associations, list):
            raise ApiError(400, "VALIDATION_ERROR", "associations must be a list")
        for association in associations:
            to_id = str((association.get("to") or {}).get("id", ""))
            types = association.get("types") or []
            expected = CONTACT_ASSOCIATION_TYPE[kind]
            ok = any(
                t.get("associationCategory") == "HUBSPOT_DEFINED"
                and int(t.get("associationTypeId", -1)) == expected
                for t in types
            )
            if not ok:
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    f"association types {types} are not valid for {kind} to contacts "
                    f"(expected HUBSPOT_DEFINED {expected})",
                )
            if to_id not in self.state.contacts:
                raise ApiError(
                    400, "VALIDATION_ERROR", f"No contact with ID {to_id} exists to associate"
                )
            contact_ids.append(to_id)
        return contact_ids

    def search(self, kind: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "VALIDATION_ERROR", "Invalid input JSON")
        groups = body.get("filterGroups") or []
        limit = int(body.get("limit", 10))
        if not 0 < limit <= 200:
            raise ApiError(400, "VALIDATION_ERROR", "limit must be between 1 and 200")
        after = int(body.get("after") or 0)
        defaults = DEFAULTS[kind]
        with self.state.lock:
            table = getattr(self.state, kind)
            visible_before = time.monotonic() - self.state.config.index_lag_seconds
            matches = [
                stored.object
                for stored in table.values()
                if stored.created <= visible_before
                and (not groups or any(self._matches(stored.object, g) for g in groups))
            ]
            page = [self._view(o, body.get("properties"), defaults) for o in matches]
        result: dict[str, Any] = {"total": len(matches), "results": page[after : after + limit]}
        if after + limit < len(matches):
            result["paging"] = {"next": {"after": str(after + limit)}}
        return 200, result

    @staticmethod
    def _matches(obj: dict[str, Any], group: Mapping[str, Any]) -> bool:
        for f in group.get("filters") or []:
            value = obj["properties"].get(f.get("propertyName"))
            wanted = str(f.get("value", ""))
            operator = f.get("operator")
            if operator == "EQ":
                ok = value is not None and value.casefold() == wanted.casefold()
            elif operator == "NEQ":
                ok = value is None or value.casefold() != wanted.casefold()
            elif operator == "CONTAINS_TOKEN":
                ok = value is not None and wanted.casefold() in _tokens(value)
            elif operator == "HAS_PROPERTY":
                ok = value not in (None, "")
            else:
                raise ApiError(400, "VALIDATION_ERROR", f"Unsupported operator {operator!r}")
            if not ok:
                return False
        return True

    def get_owner(self, owner_id: str, query: Query) -> tuple[int, Any]:
        """GET /crm/v3/owners/{id}: `archived=true` returns only archived owners, and without
        it an archived one is 404 (spec: "Whether to return only results that have been
        archived", default false)."""
        archived = _archived_param(query)
        with self.state.lock:
            owner = self.state.owners.get(owner_id)
        if owner is None or owner["archived"] != archived:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"Owner {owner_id} not found")
        return 200, dict(owner)

    def list_owners(self, query: Query) -> tuple[int, Any]:
        """GET /crm/v3/owners: filtered by `email` and `archived`, paged by `after` (owner id)."""
        limit = _int_param(query, "limit", 100, maximum=500)
        email = (_one(query, "email") or "").casefold()
        after = _one(query, "after")
        archived = _archived_param(query)
        with self.state.lock:
            owners = sorted(self.state.owners.values(), key=lambda o: int(o["id"]))
        owners = [o for o in owners if o["archived"] == archived]
        owners = [o for o in owners if not email or o["email"].casefold() == email]
        if after:
            owners = [o for o in owners if int(o["id"]) > int(after)]
        answer: dict[str, Any] = {"results": [dict(o) for o in owners[:limit]]}
        if len(owners) > limit:
            last = owners[limit - 1]["id"]
            answer["paging"] = {"next": {"after": last, "link": f"?after={last}"}}
        return 200, answer

    def account_details(self) -> tuple[int, Any]:
        """GET /account-info/v3/details (PortalInformationResponse); the offset is the time
        zone's now."""
        with self.state.lock:
            config = SandboxConfig(**asdict(self.state.config))
        offset = datetime.now(ZoneInfo(config.time_zone)).utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset else 0
        sign = "-" if minutes < 0 else "+"
        return 200, {
            "portalId": config.portal_id,
            "accountType": "STANDARD",
            "timeZone": config.time_zone,
            "companyCurrency": "USD",
            "additionalCurrencies": [],
            "utcOffset": f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}",
            "utcOffsetMilliseconds": minutes * 60_000,
            "uiDomain": "app.hubspot.com",
            "dataHostingLocation": "na1",
        }

    def get_form(self, form_id: str) -> tuple[int, Any]:
        with self.state.lock:
            form = self.state.forms.get(form_id)
        if form is None:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"Form {form_id} not found")
        return 200, json.loads(json.dumps(form))

    def list_forms(self, query: Query) -> tuple[int, Any]:
        """GET /marketing/v3/forms: forward paging by `after` (an opaque cursor)."""
        limit = _int_param(query, "limit", 20, maximum=100)
        offset = int(_one(query, "after") or 0)
        with self.state.lock:
            forms = sorted(self.state.forms.values(), key=lambda f: f["createdAt"])
        answer: dict[str, Any] = {"results": json.loads(json.dumps(forms[offset : offset + limit]))}
        if offset + limit < len(forms):
            cursor = str(offset + limit)
            answer["paging"] = {"next": {"after": cursor, "link": f"?after={cursor}"}}
        return 200, answer

    def list_submissions(self, form_id: str, query: Query) -> tuple[int, Any]:
        """GET /form-integrations/v1/submissions/forms/{guid}: newest first, `limit` ≤ 50."""
        limit = _int_param(query, "limit", 20, maximum=SUBMISSIONS_MAX_LIMIT)
        offset = int(_one(query, "after") or 0)
        with self.state.lock:
            if form_id not in self.state.forms:
                raise ApiError(404, "OBJECT_NOT_FOUND", f"Form {form_id} not found")
            listed = sorted(
                self.state.submissions.get(form_id, []),
                key=lambda s: s["submittedAt"],
                reverse=True,
            )
        page = json.loads(json.dumps(listed[offset : offset + limit]))
        answer: dict[str, Any] = {"results": page}
        if offset + limit < len(listed):
            cursor = str(offset + limit)
            link = f"/form-integrations/v1/submissions/forms/{form_id}?after={cursor}"
            answer["paging"] = {"next": {"after": cursor, "link": link}}
        return 200, answer

    @staticmethod
    def _properties(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise ApiError(400, "VALIDATION_ERROR", "Invalid input JSON: 'properties' required")
        return dict(body["properties"])


# (method, path pattern, endpoint key); the first pattern that matches wins.
ROUTES = [
    ("POST", r"/crm/v3/objects/contacts/search", "contacts.search"),
    ("GET", r"/crm/v3/objects/contacts/(?P<id>[^/]+)", "contacts.get"),
    ("GET", r"/crm/v3/objects/contacts", "contacts.list"),
    ("POST", r"/crm/v3/objects/contacts", "contacts.create"),
    ("POST", r"/crm/v3/objects/tasks/search", "tasks.search"),
    ("GET", r"/crm/v3/objects/tasks/(?P<id>[^/]+)", "tasks.get"),
    ("POST", r"/crm/v3/objects/tasks", "tasks.create"),
    ("POST", r"/crm/v3/objects/notes/search", "notes.search"),
    ("GET", r"/crm/v3/objects/notes/(?P<id>[^/]+)", "notes.get"),
    ("POST", r"/crm/v3/objects/notes", "notes.create"),
    ("GET", r"/crm/v3/owners/(?P<id>[^/]+)", "owners.get"),
    ("GET", r"/crm/v3/owners", "owners.list"),
    (
        "GET",
        r"/crm/v4/objects/(?P<from_kind>[^/]+)/(?P<id>[^/]+)/associations/(?P<to_kind>[^/]+)",
        "associations.get",
    ),
    ("GET", r"/account-info/v3/details", "account.details"),
    ("GET", r"/marketing/v3/forms/(?P<id>[^/]+)", "forms.get"),
    ("GET", r"/marketing/v3/forms", "forms.list"),
    ("GET", r"/form-integrations/v1/submissions/forms/(?P<id>[^/]+)", "forms.submissions"),
]
#: HubSpot sends no rate-limit headers on search answers (search has its own limit).
NO_RATE_LIMIT_HEADERS = {"contacts.search", "tasks.search", "notes.search"}


def _route(method: str, path: str) -> tuple[str, dict[str, str]]:
    allowed = False
    for route_method, pattern, endpoint in ROUTES:
        match = re.fullmatch(pattern, path)
        if match:
            if route_method == method:
                return endpoint, match.groupdict()
            allowed = True
    if allowed:
        raise ApiError(405, "VALIDATION_ERROR", f"Method {method} not allowed on {path}")
    raise ApiError(404, "OBJECT_NOT_FOUND", f"No HubSpot endpoint at {path}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like HubSpot, so pooled sessions reuse sockets
    # A response leaves in two writes (headers, body). With Nagle's algorithm on, the body
    # waited for the client's delayed ACK: +40 ms on every call after the first on a kept-alive
    # socket, so "50 ms" calls took 95 ms and the pipeline bench measured the sandbox, not us.
    disable_nagle_algorithm = True
    server_version = "LeadlineHubSpotSandbox/1"
    timeout = 60  # drop idle keep-alive connections
    server: SandboxHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if parts.path.startswith("/__sandbox__/"):
            self._control(parts.path.removeprefix("/__sandbox__/").rstrip("/"), raw)
        else:
            self._crm(parts.path.rstrip("/"), query, raw)

    def _crm(self, path: str, query: Query, raw: bytes) -> None:
        sandbox = self.server.sandbox
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        entry = RecordedRequest(
            method=self.command,
            path=path,
            query=query,
            json=body,
            headers={k: v for k, v in self.headers.items() if k.lower() != "authorization"},
            time=time.time(),
            endpoint="unknown",
        )
        sandbox.record(entry)
        headers: dict[str, str] = {}
        try:
            entry.endpoint, params = _route(self.command, path)
            latency, fault = sandbox.take_faults(entry.endpoint)
            if fault is not None:
                entry.fault = fault["kind"] + (f" {fault['status']}" if "status" in fault else "")
            if latency:
                time.sleep(latency)
            sandbox.authenticate(self.headers.get("Authorization"))
            headers = sandbox.count_call()
            if fault is not None and fault["kind"] == "timeout":
                time.sleep(float(fault.get("seconds", 30)))
                if fault.get("then") == "close":
                    self.close_connection = True
                    return
                fault = None
            if isinstance(body, str):
                raise ApiError(400, "VALIDATION_ERROR", "Invalid input JSON on line 1")
            if fault is not None:
                self._fault(entry, fault, headers)
                return
            if entry.endpoint in NO_RATE_LIMIT_HEADERS:
                headers = {}
            status, payload = self._handle(entry.endpoint, params, query, body)
        except ApiError as error:
            headers = {**(headers or sandbox.rate_limit_headers()), **error.headers}
            status, payload = error.status, error.body
        entry.status = status
        self._send(status, json.dumps(payload).encode(), headers)

    def _handle(
        self, endpoint: str, params: dict[str, str], query: Query, body: Any
    ) -> tuple[int, Any]:
        sandbox = self.server.sandbox
        kind = endpoint.partition(".")[0]
        match endpoint:
            case "contacts.search" | "tasks.search" | "notes.search":
                return sandbox.search(kind, body)
            case "contacts.get" | "tasks.get" | "notes.get":
                return sandbox.get_object(kind, params["id"], query)
            case "contacts.list":
                return sandbox.list_objects(kind, query)
            case "contacts.create":
                return sandbox.create_contact(body)
            case "tasks.create" | "notes.create":
                return sandbox.create_engagement(kind, body)
            case "owners.list":
                return sandbox.list_owners(query)
            case "associations.get":
                return sandbox.get_associations(
                    params["from_kind"], params["id"], params["to_kind"], query
                )
            case "account.details":
                return sandbox.account_details()
            case "forms.get":
                return sandbox.get_form(params["id"])
            case "forms.list":
                return sandbox.list_forms(query)
            case "forms.submissions":
                return sandbox.list_submissions(params["id"], query)
            case _:
                return sandbox.get_owner(params["id"], query)

    def _fault(
        self, entry: RecordedRequest, fault: dict[str, Any], headers: dict[str, str]
    ) -> None:
        if fault["kind"] == "malformed":
            entry.status = 200
            self._send(200, b'{"results": [{"id": "1", "properties": ', headers)
            return
        if fault["kind"] == "html":
            # What a proxy in front of the API answers when it cannot reach it: not JSON.
            status = int(fault.get("status", 502))
            entry.status = status
            page = f"<html><body><h1>{status} {HTTPStatus(status).phrase}</h1></body></html>"
            self._send(status, page.encode(), headers, content_type="text/html")
            return
        status = int(fault.get("status", 500))
        default_category = {
            429: "RATE_LIMITS",
            401: "INVALID_AUTHENTICATION",
            404: "OBJECT_NOT_FOUND",
            423: "LOCKED",
            477: "MIGRATION_IN_PROGRESS",
        }
        category = fault.get("category") or default_category.get(
            status, "VALIDATION_ERROR" if status < 500 else "INTERNAL_ERROR"
        )
        policy = str(fault.get("policy") or "TEN_SECONDLY_ROLLING").upper()
        message = fault.get("message") or (
            f"You have reached your {policy.lower()} limit."
            if status == 429
            else f"Sandbox injected a {status} response"
        )
        extra = {"errorType": "RATE_LIMIT", "policyName": policy} if status == 429 else {}
        if status == 429 and policy == "DAILY":
            headers = {**headers, "X-HubSpot-RateLimit-Daily-Remaining": "0"}
        if fault.get("retry_after") is not None:
            headers = {**headers, "Retry-After": str(fault["retry_after"])}
        entry.status = status
        self._send(
            status, json.dumps(ApiError(status, category, message, **extra).body).encode(), headers
        )

    def _control(self, action: str, raw: bytes) -> None:
        sandbox = self.server.sandbox
        try:
            body = json.loads(raw) if raw else {}
            if self.command == "GET" and action == "requests":
                payload: Any = {"requests": [asdict(r) for r in sandbox.requests]}
            elif self.command == "GET" and action == "state":
                payload = sandbox.snapshot()
            elif self.command != "POST":
                raise ApiError(404, "OBJECT_NOT_FOUND", f"No sandbox control GET {action}")
            elif action == "reset":
                sandbox.reset()
                payload = {"ok": True}
            elif action == "faults":
                sandbox.set_faults(body.get("faults", body))
                payload = {"faults": sandbox.snapshot()["faults"]}
            elif action == "contacts":
                items = body.get("contacts", [body])
                payload = {"contacts": [sandbox.seed_contact(**self._seed_args(c)) for c in items]}
            elif action == "owners":
                items = body.get("owners", [body])
                payload = {"owners": [sandbox.seed_owner(**o) for o in items]}
            elif action == "forms":
                items = body.get("forms", [body])
                payload = {"forms": [sandbox.seed_form(**f) for f in items]}
            elif action == "submissions":
                payload = {
                    "submissions": sandbox.seed_submissions(
                        str(body["form_id"]), body.get("submissions", [])
                    )
                }
            elif action == "config":
                payload = asdict(sandbox.configure(**body))
            else:
                raise ApiError(404, "OBJECT_NOT_FOUND", f"No sandbox control POST {action}")
            status = 200
        except ApiError as error:
            status, payload = error.status, error.body
        except (ValueError, TypeError) as error:
            status, payload = 400, {"status": "error", "message": str(error)}
        self._send(status, json.dumps(payload).encode(), {})

    @staticmethod
    def _seed_args(item: Mapping[str, Any]) -> dict[str, Any]:
        """Accept {"properties": {...}, "id": ..., "owner_id": ...} or a flat property dict."""
        item = dict(item)
        properties = dict(item.pop("properties", {}))
        contact_id = item.pop("id", None)
        owner_id = item.pop("owner_id", None)
        properties.update(item)
        if owner_id is not None:
            properties["hubspot_owner_id"] = str(owner_id)
        return {"properties": properties, "id": contact_id}

    def _send(
        self,
        status: int,
        payload: bytes,
        headers: Mapping[str, str],
        content_type: str = "application/json;charset=utf-8",
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            # The client gave up (read timeout) or the sandbox is stopping.
            self.close_connection = True


class SandboxServer(ThreadedSandbox):
    """The sandbox on a real socket. `port=0` picks a free port; read `.url` after start()."""

    handler = _Handler
    thread_name = "hubspot-sandbox"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
        latency_ms: int = 0,
        index_lag_seconds: float = 0.0,
        rate_limit: int | None = None,
        rate_limit_interval_ms: int = 10_000,
        seed: int | None = None,
    ) -> None:
        super().__init__(host, port)
        self.sandbox = Sandbox(
            SandboxConfig(
                token=token,
                latency_ms=latency_ms,
                index_lag_seconds=index_lag_seconds,
                rate_limit=rate_limit,
                rate_limit_interval_ms=rate_limit_interval_ms,
            ),
            seed=seed,
        )

    @property
    def state(self) -> SandboxState:
        return self.sandbox.state

    @property
    def token(self) -> str | None:
        return self.sandbox.state.config.token

    # Direct accessors, for tests in the same process.
    def reset(self) -> None:
        self.sandbox.reset()

    def configure(self, **changes: Any) -> SandboxConfig:
        return self.sandbox.configure(**changes)

    def set_faults(self, faults: Mapping[str, Any]) -> None:
        self.sandbox.set_faults(faults)

    def add_fault(self, endpoint: str, rule: Mapping[str, Any]) -> None:
        self.sandbox.add_fault(endpoint, rule)

    def seed_contact(
        self, properties: Mapping[str, Any] | None = None, *, id: str | None = None, **props: Any
    ) -> dict[str, Any]:
        return self.sandbox.seed_contact(properties, id=id, **props)

    def seed_owner(self, **owner: Any) -> dict[str, Any]:
        return self.sandbox.seed_owner(**owner)

    def seed_form(self, **form: Any) -> dict[str, Any]:
        return self.sandbox.seed_form(**form)

    def seed_submissions(
        self, form_id: str, submissions: Iterable[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        return self.sandbox.seed_submissions(form_id, submissions)

    def requests(self, endpoint: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.sandbox.requests if endpoint is None or r.endpoint == endpoint]
