"""Recognise the three HubSpot webhook body shapes and normalise them into lead items."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

ACCEPTED_SHAPES = (
    "a Webhooks API event array ([{subscriptionType|eventType, objectId, ...}]), "
    'a workflow contact ({"properties": {...}}), '
    'a workflow custom body ({"email": ..., "hs_object_id": ..., ...}: flat, naming an email '
    "or the record id) or "
    'a Forms submission ({"fields": [{"name", "value"}], ...})'
)
MAX_DEPTH = 32
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

FIELD_NAMES = {
    "email": ("email",),
    "first_name": ("firstname", "first_name"),
    "last_name": ("lastname", "last_name"),
    "company": ("company", "company_name"),
    "phone": ("phone", "mobilephone", "phone_number"),
    "message": (
        "message",
        "comments",
        "comment",
        "what_can_we_help_you_with",
        "how_can_we_help",
        "how_can_we_help_you",
        "inquiry",
        "enquiry",
    ),
}


class PayloadError(ValueError):
    """The body is not one HubSpot shape we accept; the message says what was expected."""


@dataclass(frozen=True, kw_only=True)
class NormalisedItem:
    shape: str
    email: str = ""
    email_error: str = ""
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    phone: str = ""
    message: str = ""
    form_id: str = ""
    page_uri: str = ""
    portal_id: int | None = None
    submitted_at: datetime | None = None
    object_id: str = ""
    event_type: str = ""
    conversion_id: str = ""
    #: The HubSpot contact id where the shape does not carry it but the caller found it: the
    #: Forms poll looks it up by email, so a polled submission claims ``contact:<id>`` too
    #: (intake/identity.py). Events and workflow bodies carry theirs in ``object_id``.
    contact_id: str = ""
    #: Events: "<object>.<action>" whatever the spelling ("contact.creation", "deal.creation").
    subscription: str = ""
    property_name: str = ""
    merged_ids: tuple[str, ...] = ()
    raw: Any
    dedupe_key: str


@dataclass(frozen=True, kw_only=True)
class RefusedEvent:
    """One event of a batch that cannot be read; the rest of the batch is still stored."""

    index: int
    reason: str
    raw: Any
    dedupe_key: str


@dataclass(frozen=True)
class Delivery:
    items: list[NormalisedItem]
    refused: list[RefusedEvent]


def parse_delivery(
    body: bytes,
    *,
    query: Mapping[str, str] | None = None,
    max_events: int = 100,
) -> Delivery:
    """Parse a webhook body into items and refused events. Pure: no I/O, no database.

    Raises PayloadError only when the request fails as a whole (not JSON, no known shape,
    an empty batch or one over HubSpot's limit); one unreadable event in a batch is
    returned as a RefusedEvent with its reason instead, so it never sinks the others.
    """
    data = _load_json(body)
    query = query or {}
    if isinstance(data, list):
        return _parse_events(data, max_events)
    if isinstance(data, dict) and isinstance(data.get("fields"), list):
        return Delivery([_parse_form(data, query)], [])
    if isinstance(data, dict) and isinstance(data.get("properties"), dict):
        return Delivery([_parse_workflow(data, query, data["properties"])], [])
    if isinstance(data, dict) and (custom := _custom_body_properties(data)):
        return Delivery([_parse_workflow(data, query, custom)], [])
    raise PayloadError(f"unrecognised body; expected {ACCEPTED_SHAPES}")


#: The keys that make a flat object a workflow's custom body (one of them must be there).
_CUSTOM_BODY_KEYS = {"email", "email_address", "hs_object_id", "record_id"}


def _custom_body_properties(body: dict[str, Any]) -> dict[str, Any]:
    """A workflow "Send a webhook" action set to *Customize request body* sends the chosen
    properties as a flat object under the keys the HubSpot user typed: ``{"email": "…",
    "firstname": "…", "hs_object_id": "…"}``. Keys are matched without case, spaces or
    hyphens ("First Name" is first_name). Returns the properties when every value is a
    scalar and an email or the record id is among them, else {} (not this shape).

    Like a form post, it is recognised by its content alone, so a HubSpot retry or a replay
    of it is a duplicate whenever it comes. Two form fills with the very same chosen values
    are one delivery too: docs/hubspot-app.md asks for `recent_conversion_date` in the body,
    which tells fills apart."""
    properties = {}
    for name, value in body.items():
        if isinstance(value, (dict, list)):
            return {}
        properties["_".join(str(name).lower().replace("-", " ").split())] = value
    if not _CUSTOM_BODY_KEYS & properties.keys():
        return {}
    properties.setdefault("email", properties.get("email_address"))
    properties.setdefault("hs_object_id", properties.get("record_id"))
    return properties


def parse_body(
    body: bytes, *, query: Mapping[str, str] | None = None, max_events: int = 100
) -> list[NormalisedItem]:
    """The items of a body that must be wholly readable: any refused event is a PayloadError."""
    delivery = parse_delivery(body, query=query, max_events=max_events)
    if delivery.refused:
        raise PayloadError(delivery.refused[0].reason)
    return delivery.items


def parse_forms_api_submission(
    submission: dict[str, Any], *, portal_id: int, form_id: str, contact_id: str = ""
) -> NormalisedItem:
    """One result item of the Forms API (``GET /form-integrations/v1/submissions/forms/{guid}``:
    ``conversionId``, ``submittedAt`` in ms, ``values`` [{name, value}], ``pageUrl``) as a lead
    item, the way the Forms reconciliation poll hands it to ``submissions_ingest``.

    Portal and form come from the poll (the item does not carry them). The dedupe key is
    HubSpot's ``conversionId`` when present, so every poll of the same submission is stored
    once; the lead identity (``intake.identity``) also joins it to the webhook of the same
    lead. ``contact_id`` is the contact the poll found by email, if any: with it the item
    also claims the contact's key, so it joins (or is joined by) that contact's event and
    workflow body. Raises PayloadError for an item that is not an object or whose values
    are malformed.
    """
    if not isinstance(submission, dict):
        raise PayloadError("a Forms API submission must be an object")
    values = submission.get("values")
    if not isinstance(values, list):
        raise PayloadError("a Forms API submission has no values [{name, value}] list")
    fields = _fields_by_name(values, label="Forms API value")
    conversion_id = _text(submission.get("conversionId"))
    item = _build(
        shape="forms",
        fields=fields,
        body=submission,
        portal_id=_to_int(portal_id),
        form_id=_clean(str(form_id)),
        page_uri=_text(submission.get("pageUrl")),
        submitted_at=_to_datetime(submission.get("submittedAt")),
        object_id="",
        conversion_id=conversion_id,
    )
    if _is_id(contact_id):
        item = replace(item, contact_id=_text(contact_id))
    if conversion_id:
        return replace(item, dedupe_key="conversion:" + _sha256([conversion_id]))
    return item


def _load_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"body is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise PayloadError("body is nested too deeply") from exc
    except ValueError as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from exc
    if _depth(data) > MAX_DEPTH:
        raise PayloadError(f"body is nested more than {MAX_DEPTH} levels deep")
    return data


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _depth(value: Any) -> int:
    """The depth of the deepest value (a scalar body is 1), measured only up to MAX_DEPTH + 1.
    Level by level and iterative, so a deep body cannot hit the recursion limit; only
    containers are queued, so a wide batch costs one isinstance per value (it was a third
    of a 100-event batch's Python time when every value went through the stack)."""
    deepest = 1
    level = [value] if isinstance(value, (dict, list)) else []
    while level and deepest <= MAX_DEPTH:
        below: list[Any] = []
        has_values = False
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            if children:
                has_values = True
                below.extend(child for child in children if isinstance(child, (dict, list)))
        if not has_values:
            break
        deepest += 1
        level = below
    return deepest


def _parse_events(events: list[Any], max_events: int) -> Delivery:
    if not events:
        raise PayloadError(f"empty array; expected {ACCEPTED_SHAPES}")
    if len(events) > max_events:
        raise PayloadError(f"{len(events)} events in one batch; HubSpot sends at most {max_events}")
    items, refused = [], []
    for index, event in enumerate(events):
        try:
            items.append(_parse_event(event, index))
        except PayloadError as exc:
            refused.append(
                RefusedEvent(
                    index=index,
                    reason=str(exc),
                    raw=event,
                    dedupe_key="refused:" + _sha256(_without_attempt(event)),
                )
            )
    return Delivery(items, refused)


def _without_attempt(event: Any) -> Any:
    # A redelivery differs only in attemptNumber: it is the same refused event.
    if isinstance(event, dict):
        return {k: v for k, v in event.items() if k != "attemptNumber"}
    return event


#: HubSpot's object type ids (generic ``object.*`` events) for the objects we name.
OBJECT_TYPES = {"0-1": "contact", "0-2": "company", "0-3": "deal", "0-5": "ticket"}


def _parse_event(event: Any, index: int) -> NormalisedItem:
    """One Webhooks API event, legacy (``contact.creation``) or generic (``object.creation``
    with ``objectTypeId``), as an item whose ``subscription`` names object and action."""
    if not isinstance(event, dict):
        raise PayloadError(f"event {index} is not an object")
    event_type = event.get("subscriptionType") or event.get("eventType")
    if not isinstance(event_type, str) or "." not in event_type:
        raise PayloadError(f"event {index} lacks subscriptionType/eventType")
    kind, _, action = event_type.partition(".")
    if kind == "object":
        type_id = event.get("objectTypeId")
        if action == "associationChange" and "objectTypeId" not in event:
            # A generic association change names its objects' types in fromObjectTypeId /
            # toObjectTypeId, not objectTypeId; it is routed by its action (never a lead).
            type_id = event.get("fromObjectTypeId")
        if not isinstance(type_id, str) or not type_id.strip():
            raise PayloadError(f"event {index} ({event_type}) lacks objectTypeId")
        kind = OBJECT_TYPES.get(type_id.strip(), type_id.strip())
    object_id, merged = _event_object_ids(event, index, event_type, action)
    # attemptNumber is left out because it changes on redelivery; eventId alone is not unique.
    # The type is always in: object ids are unique only within an object type (object.* for
    # a contact and a deal may share one), and one GDPR delete sends contact.privacyDeletion
    # and contact.deletion for the same object at the same time. Neither may be taken for a
    # redelivery of the other (stop 23; keys of events stored before it lacked the type).
    identity = [
        event.get(key)
        for key in (
            "portalId",
            "objectId",
            "occurredAt",
            "eventId",
            "propertyName",
            "propertyValue",
        )
    ] + [event_type, event.get("objectTypeId")]
    if "objectId" not in event:
        # Association changes and merges name their objects in other fields.
        identity += [
            *(event.get(key) for key in ("fromObjectId", "toObjectId", "primaryObjectId")),
            event.get("mergedObjectIds"),
            event.get("associationType"),
            event.get("fromObjectTypeId"),
            event.get("toObjectTypeId"),
        ]
    return NormalisedItem(
        shape="event",
        portal_id=_to_int(event.get("portalId")),
        submitted_at=_to_datetime(event.get("occurredAt")),
        object_id=object_id,
        event_type=_clean(event_type),
        subscription=_clean(f"{kind}.{action}"),
        property_name=_text(event.get("propertyName")),
        merged_ids=merged,
        raw=event,
        dedupe_key="evt:" + _sha256(identity),
    )


def _event_object_ids(
    event: dict[str, Any], index: int, event_type: str, action: str
) -> tuple[str, tuple[str, ...]]:
    """The event's object id and, for a merge, the merged ids; PayloadError when absent."""
    if action == "associationChange":
        if not (_is_id(event.get("fromObjectId")) and _is_id(event.get("toObjectId"))):
            raise PayloadError(f"event {index} ({event_type}) lacks fromObjectId/toObjectId")
        return "", ()
    if action == "merge":
        merged = event.get("mergedObjectIds")
        primary = event.get("primaryObjectId")
        if not _is_id(primary) or not isinstance(merged, list) or not all(map(_is_id, merged)):
            raise PayloadError(
                f"event {index} ({event_type}) lacks primaryObjectId/mergedObjectIds"
            )
        return _text(primary), tuple(_text(m) for m in merged)
    object_id = event.get("objectId")
    if not _is_id(object_id):
        raise PayloadError(f"event {index} ({event_type}) lacks objectId")
    return _text(object_id), ()


def _parse_workflow(
    body: dict[str, Any], query: Mapping[str, str], raw_properties: dict[str, Any]
) -> NormalisedItem:
    # CRM v3 properties are plain values; the legacy shape wraps each one as {"value": ...}.
    properties = {
        str(name).lower(): value.get("value") if isinstance(value, dict) else value
        for name, value in raw_properties.items()
    }
    submission = _latest_form_submission(body.get("form-submissions"))
    object_id = next(
        (body[key] for key in ("id", "objectId", "vid", "canonical-vid") if _is_id(body.get(key))),
        properties.get("hs_object_id"),
    )
    return _build(
        shape="workflow",
        fields=properties,
        body=body,
        portal_id=_first_int(body.get("portalId"), body.get("portal-id"), *_query(query, "portal")),
        form_id=_first_text(submission.get("form-id"), *_query(query, "form")),
        page_uri=_text(submission.get("page-url")),
        submitted_at=_to_datetime(
            properties.get("recent_conversion_date")
            or submission.get("timestamp")
            or body.get("createdAt")
        ),
        object_id=_text(object_id) if _is_id(object_id) else "",
        conversion_id=_text(submission.get("conversion-id")),
    )


def _parse_form(body: dict[str, Any], query: Mapping[str, str]) -> NormalisedItem:
    fields = _fields_by_name(body["fields"], label="form field")
    context = body.get("context") if isinstance(body.get("context"), dict) else {}
    return _build(
        shape="forms",
        fields=fields,
        body=body,
        portal_id=_first_int(body.get("portalId"), *_query(query, "portal")),
        form_id=_first_text(body.get("formId"), body.get("formGuid"), *_query(query, "form")),
        page_uri=_text(context.get("pageUri")),
        submitted_at=_to_datetime(body.get("submittedAt")),
        object_id="",
    )


def _fields_by_name(values: list[Any], *, label: str) -> dict[str, Any]:
    """A Forms list of ``{name, value}`` objects as lower-cased name -> value; PayloadError
    ("<label> <index> is not a {name, value} object") for an entry that is not an object."""
    fields: dict[str, Any] = {}
    for index, field in enumerate(values):
        if not isinstance(field, dict):
            raise PayloadError(f"{label} {index} is not a {{name, value}} object")
        name = str(field.get("name", "")).lower()
        # Multi-select fields repeat their name; the first non-empty value is the one we map.
        if not _text(fields.get(name)):
            fields[name] = field.get("value")
    return fields


def _build(
    *,
    shape: str,
    fields: Mapping[str, Any],
    body: dict[str, Any],
    portal_id: int | None,
    form_id: str,
    **rest: Any,
) -> NormalisedItem:
    mapped = {
        attribute: _first_text(*(fields.get(name) for name in names))
        for attribute, names in FIELD_NAMES.items()
    }
    email, email_error = normalise_email(mapped.pop("email"))
    return NormalisedItem(
        shape=shape,
        email=email,
        email_error=email_error,
        portal_id=portal_id,
        form_id=form_id,
        raw=body,
        dedupe_key=f"{shape}:" + _sha256([body, portal_id, form_id]),
        **mapped,
        **rest,
    )


def normalise_email(value: str) -> tuple[str, str]:
    """(the address as Leadline stores it, "") or ("", why it is not one): trimmed, lower
    case, and valid by Django's validator. Intake reads deliveries with it; the pipeline
    reads a CRM contact's address with it (workflows.pipeline.submission_fill)."""
    email = value.strip().lower()
    if not email:
        return "", "missing email"
    try:
        validate_email(email)
    except ValidationError:
        shown = value if len(value) <= 80 else value[:77] + "..."
        return "", f"invalid email {shown!r}"
    return email, ""


def _latest_form_submission(submissions: Any) -> dict[str, Any]:
    candidates = (
        [s for s in submissions or [] if isinstance(s, dict)]
        if isinstance(submissions, list)
        else []
    )
    return max(candidates, key=lambda s: _to_int(s.get("timestamp")) or 0, default={})


def _query(query: Mapping[str, str], kind: str) -> list[Any]:
    names = {
        "portal": ("portalId", "portal_id"),
        "form": ("formId", "formGuid", "form_id"),
    }[kind]
    return [query.get(name) for name in names]


def _sha256(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: JSON may carry lone "\udXXX" escapes, which strict UTF-8 cannot encode.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _is_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and value.strip() != ""
    )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return _clean(str(value).strip())
    return ""


def _clean(text: str) -> str:
    # PostgreSQL text refuses NUL and lone surrogates; drop them so a stray byte can't lose a lead.
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _first_text(*values: Any) -> str:
    return next((text for text in map(_text, values) if text), "")


def _to_int(value: Any) -> int | None:
    """An int that fits a bigint column, from a JSON number or a digit string; else None."""
    if isinstance(value, str):
        digits = value.strip()
        value = int(digits) if digits.isascii() and digits.isdigit() and len(digits) < 20 else None
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return value
    return None


def _first_int(*values: Any) -> int | None:
    return next((number for number in map(_to_int, values) if number is not None), None)


def _to_datetime(value: Any) -> datetime | None:
    """HubSpot times are epoch milliseconds (number or digit string) or ISO 8601 strings."""
    millis = _to_int(value)
    try:
        if millis is not None:
            return EPOCH + timedelta(milliseconds=millis)
        if isinstance(value, str) and value:
            parsed = datetime.fromisoformat(value)
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        pass
    return None
