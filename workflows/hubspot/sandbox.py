"""A local imitation of the HubSpot CRM v3 API, served over real HTTP.

It covers what `workflows/hubspot/client.py` calls: contact search/get/create, task create/search,
note create and owner lookup, with Bearer auth, rate-limit headers, an optional enforced
rolling limit, search-index lag and injectable faults. Every CRM request is recorded so tests
can assert exactly what was sent. `/__sandbox__/` is an unauthenticated control API for
processes that cannot reach the Python object (Celery workers, browsers, shell scripts).

Fault rules, per endpoint key (`contacts.search`, `contacts.get`, `contacts.create`,
`tasks.create`, `tasks.search`, `tasks.get`, `notes.create`, `notes.search`, `owners.get`) or `*`:

    {"kind": "status", "status": 500, "times": 1, "message": ..., "category": ...,
     "retry_after": 1}                 # 429 with Retry-After: 1
    {"kind": "latency", "ms": 200, "times": null}      # delays, then answers normally
    {"kind": "timeout", "seconds": 2, "times": 1, "then": "answer" | "close"}
    {"kind": "malformed", "times": 1}                  # 200 with a body that is not JSON
    {"kind": "rate", "probability": 0.3, "choices": [<rule>, ...], "times": null}

`times` counts how often a rule fires (null = forever). Latency rules add up; the first
other live rule for the endpoint (then for `*`) decides the answer.

Control API (JSON in, JSON out): GET requests | GET state | POST reset |
POST faults {"faults": {key: rule-or-rules}} (replaces all) |
POST contacts {"contacts": [{"email": ..., "owner_id": ..., "id": ...}]} |
POST owners {"owners": [{"id", "email", "firstName", "lastName", "userId"}]} |
POST config {"latency_ms", "index_lag_seconds", "rate_limit", "rate_limit_interval_ms",
"token"}.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_OWNER = {
    "id": "1001",
    "email": "avery@example.com",
    "firstName": "Avery",
    "lastName": "Owner",
    "userId": 2001,
}
CONTACT_DEFAULT_PROPERTIES = ("createdate", "email", "firstname", "lastmodifieddate", "lastname")
TASK_DEFAULT_PROPERTIES = ("hs_createdate", "hs_lastmodifieddate")
NOTE_DEFAULT_PROPERTIES = ("hs_createdate", "hs_lastmodifieddate")
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
FAULT_KINDS = {"status", "latency", "timeout", "malformed", "rate"}


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


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
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


@dataclass
class SandboxState:
    """Everything the sandbox knows. Guard every access with `lock`."""

    config: SandboxConfig
    lock: threading.RLock = field(default_factory=threading.RLock)
    contacts: dict[str, _Stored] = field(default_factory=dict)
    tasks: dict[str, _Stored] = field(default_factory=dict)
    notes: dict[str, _Stored] = field(default_factory=dict)
    owners: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: deque[RecordedRequest] = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_SIZE))
    faults: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    window: deque[float] = field(default_factory=deque)
    daily_used: int = 0
    next_id: int = 100_001
    default_owner_id: str | None = None


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
            for name in ("contacts", "tasks", "notes", "owners", "faults"):
                getattr(self.state, name).clear()
            self.state.requests.clear()
            self.state.window.clear()
            self.state.daily_used = 0
            self.state.next_id = 100_001
            self.seed_owner(**DEFAULT_OWNER)
            self.state.default_owner_id = DEFAULT_OWNER["id"]

    def configure(self, **changes: Any) -> SandboxConfig:
        with self.state.lock:
            for name, value in changes.items():
                if not hasattr(self.state.config, name):
                    raise ValueError(f"unknown sandbox setting {name!r}")
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
    ) -> dict[str, Any]:
        now = _now_iso()
        owner = {
            "id": str(id),
            "email": email,
            "type": "PERSON",
            "firstName": firstName,
            "lastName": lastName,
            "userId": userId,
            "createdAt": now,
            "updatedAt": now,
            "archived": False,
            "teams": [],
        }
        with self.state.lock:
            self.state.owners[owner["id"]] = owner
        return owner

    def seed_contact(
        self, properties: Mapping[str, Any] | None = None, *, id: str | None = None, **props: Any
    ) -> dict[str, Any]:
        """Store a contact that search already sees (seeded data is indexed)."""
        with self.state.lock:
            stored = self._new_object(self.state.contacts, {**(properties or {}), **props}, id=id)
            props_ = stored.object["properties"]
            props_.setdefault("hubspot_owner_id", self.state.default_owner_id)
            stored.created = float("-inf")
            return json.loads(json.dumps(stored.object))

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
        view = dict(obj)
        view["properties"] = {name: obj["properties"].get(name) for name in names}
        return json.loads(json.dumps(view))

    def get_contact(self, contact_id: str, query: Mapping[str, str]) -> tuple[int, Any]:
        requested = [p for p in query.get("properties", "").split(",") if p]
        with self.state.lock:
            stored = self.state.contacts.get(contact_id)
            if stored is None:
                raise ApiError(404, "OBJECT_NOT_FOUND", "resource not found")
            return 200, self._view(stored.object, requested, CONTACT_DEFAULT_PROPERTIES)

    def get_task(self, task_id: str, query: Mapping[str, str]) -> tuple[int, Any]:
        requested = [p for p in query.get("properties", "").split(",") if p]
        with self.state.lock:
            stored = self.state.tasks.get(task_id)
            if stored is None:
                raise ApiError(404, "OBJECT_NOT_FOUND", "resource not found")
            return 200, self._view(stored.object, requested, TASK_DEFAULT_PROPERTIES)

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
            properties.setdefault("hubspot_owner_id", self.state.default_owner_id)
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
            if owner and str(owner) not in self.state.owners:
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    f"Property values were not valid: {owner} is not a valid owner id",
                )
            associations = self._associations(kind, body.get("associations") or [])
            table = self.state.tasks if kind == "tasks" else self.state.notes
            stored = self._new_object(table, properties)
            stored.object["associations"] = associations
            return 201, json.loads(json.dumps(stored.object))

    def _associations(self, kind: str, associations: Any) -> dict[str, Any]:
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
        return {
            "contacts": {
                "results": [{"id": i, "type": f"{kind[:-1]}_to_contact"} for i in contact_ids]
            }
        }

    def search(self, kind: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "VALIDATION_ERROR", "Invalid input JSON")
        groups = body.get("filterGroups") or []
        limit = int(body.get("limit", 10))
        if not 0 < limit <= 200:
            raise ApiError(400, "VALIDATION_ERROR", "limit must be between 1 and 200")
        after = int(body.get("after") or 0)
        defaults = {
            "contacts": CONTACT_DEFAULT_PROPERTIES,
            "tasks": TASK_DEFAULT_PROPERTIES,
            "notes": NOTE_DEFAULT_PROPERTIES,
        }[kind]
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

    def get_owner(self, owner_id: str) -> tuple[int, Any]:
        with self.state.lock:
            owner = self.state.owners.get(owner_id)
        if owner is None:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"Owner {owner_id} not found")
        return 200, dict(owner)

    @staticmethod
    def _properties(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise ApiError(400, "VALIDATION_ERROR", "Invalid input JSON: 'properties' required")
        return dict(body["properties"])


# (method, path pattern, endpoint key); the first pattern that matches wins.
ROUTES = [
    ("POST", r"/crm/v3/objects/contacts/search", "contacts.search"),
    ("GET", r"/crm/v3/objects/contacts/(?P<id>[^/]+)", "contacts.get"),
    ("POST", r"/crm/v3/objects/contacts", "contacts.create"),
    ("POST", r"/crm/v3/objects/tasks/search", "tasks.search"),
    ("GET", r"/crm/v3/objects/tasks/(?P<id>[^/]+)", "tasks.get"),
    ("POST", r"/crm/v3/objects/tasks", "tasks.create"),
    ("POST", r"/crm/v3/objects/notes/search", "notes.search"),
    ("POST", r"/crm/v3/objects/notes", "notes.create"),
    ("GET", r"/crm/v3/owners/(?P<id>[^/]+)", "owners.get"),
]


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
    server: _Server

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
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if parts.path.startswith("/__sandbox__/"):
            self._control(parts.path.removeprefix("/__sandbox__/").rstrip("/"), raw)
        else:
            self._crm(parts.path.rstrip("/"), query, raw)

    def _crm(self, path: str, query: dict[str, str], raw: bytes) -> None:
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
            status, payload = self._handle(entry.endpoint, params, query, body)
        except ApiError as error:
            headers = {**(headers or sandbox.rate_limit_headers()), **error.headers}
            status, payload = error.status, error.body
        entry.status = status
        self._send(status, json.dumps(payload).encode(), headers)

    def _handle(
        self, endpoint: str, params: dict[str, str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        sandbox = self.server.sandbox
        match endpoint:
            case "contacts.search":
                return sandbox.search("contacts", body)
            case "contacts.get":
                return sandbox.get_contact(params["id"], query)
            case "contacts.create":
                return sandbox.create_contact(body)
            case "tasks.search":
                return sandbox.search("tasks", body)
            case "tasks.get":
                return sandbox.get_task(params["id"], query)
            case "tasks.create":
                return sandbox.create_engagement("tasks", body)
            case "notes.create":
                return sandbox.create_engagement("notes", body)
            case "notes.search":
                return sandbox.search("notes", body)
            case _:
                return sandbox.get_owner(params["id"])

    def _fault(
        self, entry: RecordedRequest, fault: dict[str, Any], headers: dict[str, str]
    ) -> None:
        if fault["kind"] == "malformed":
            entry.status = 200
            self._send(200, b'{"results": [{"id": "1", "properties": ', headers)
            return
        status = int(fault.get("status", 500))
        default_category = {
            429: "RATE_LIMITS",
            401: "INVALID_AUTHENTICATION",
            404: "OBJECT_NOT_FOUND",
        }
        category = fault.get("category") or default_category.get(
            status, "VALIDATION_ERROR" if status < 500 else "INTERNAL_ERROR"
        )
        message = fault.get("message") or (
            "You have reached your ten_secondly_rolling limit."
            if status == 429
            else f"Sandbox injected a {status} response"
        )
        extra = (
            {"errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}
            if status == 429
            else {}
        )
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

    def _send(self, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            # The client gave up (read timeout) or the sandbox is stopping.
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (a killed worker, a timed-out call) is normal here.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        with self.sockets_lock:
            sockets, self.open_sockets = list(self.open_sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class SandboxServer:
    """The sandbox on a real socket. `port=0` picks a free port; read `.url` after start()."""

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
        self.host = host
        self.port = port
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
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> SandboxState:
        return self.sandbox.state

    @property
    def token(self) -> str | None:
        return self.sandbox.state.config.token

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("SandboxServer is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        self._server = _Server((self.host, self.port), self.sandbox)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns quickly
            name="hubspot-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_all()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

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

    def requests(self, endpoint: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.sandbox.requests if endpoint is None or r.endpoint == endpoint]
