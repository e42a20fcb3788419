"""The webhook's entry in the OpenAPI schema.

The webhook is a plain Django view on purpose (nothing may parse the body before the signature
over its raw bytes is checked), so drf-spectacular never discovers it, and an ``extend_schema``
stub would be a second view that could drift from the real one. Instead this postprocessing
hook writes the operation into the generated schema; ``config/api_urls.py`` enables it.
"""

from __future__ import annotations

from typing import Any

WEBHOOK_PATH = "/api/webhooks/hubspot/forms"

_EVENTS_EXAMPLE = [
    {
        "eventId": 1001,
        "subscriptionId": 12345,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": 1764201600000,
        "subscriptionType": "contact.creation",
        "attemptNumber": 0,
        "objectId": 5101,
        "changeSource": "FORM",
        "changeFlag": "NEW",
    },
    {
        "eventId": 1002,
        "subscriptionId": 12346,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": 1764201601000,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": 5101,
        "propertyName": "lifecyclestage",
        "propertyValue": "lead",
        "changeSource": "FORM",
    },
]
_WORKFLOW_CONTACT_EXAMPLE = {
    "id": "5101",
    "properties": {
        "email": "Ada.Lovelace@Example.com",
        "firstname": "Ada",
        "lastname": "Lovelace",
        "company": "Analytical Engines Ltd",
        "message": "We'd like a demo for a team of 40 next week.",
        "hubspot_owner_id": "77001",
        "lifecyclestage": "lead",
    },
    "createdAt": "2026-11-27T09:14:03.211Z",
    "updatedAt": "2026-11-27T09:14:05.002Z",
    "archived": False,
}
_FORMS_EXAMPLE = {
    "portalId": 62515,
    "formGuid": "4f2b7c1e-9a3d-4b8e-8f6a-2c1d0e9b7a55",
    "submittedAt": "1764235200000",
    "fields": [
        {"objectTypeId": "0-1", "name": "email", "value": "grace@navy.example.mil"},
        {"objectTypeId": "0-1", "name": "firstname", "value": "Grace"},
        {"objectTypeId": "0-1", "name": "company", "value": "Compiler Works"},
        {"objectTypeId": "0-1", "name": "message", "value": "Interested in pricing for 3 sites."},
    ],
    "context": {"pageUri": "https://www.example.com/pricing", "pageName": "Pricing"},
}

_EVENT = {
    "type": "object",
    "description": "A Webhooks API event (the composite key, not eventId alone, dedupes).",
    "properties": {
        "eventId": {"type": "integer"},
        "subscriptionId": {"type": "integer"},
        "portalId": {"type": "integer"},
        "appId": {"type": "integer"},
        "occurredAt": {"type": "integer", "description": "Milliseconds since the epoch."},
        "subscriptionType": {"type": "string", "example": "contact.creation"},
        "attemptNumber": {"type": "integer"},
        "objectId": {"type": "integer"},
        "propertyName": {"type": "string"},
        "propertyValue": {"type": "string"},
        "changeSource": {"type": "string"},
    },
    "required": ["eventId", "portalId", "objectId"],
}
_BODY_SCHEMA = {
    "oneOf": [
        {
            "title": "Webhooks API events",
            "type": "array",
            "items": _EVENT,
            "minItems": 1,
            "maxItems": 100,
        },
        {
            "title": "Workflow 'Send a webhook' contact",
            "type": "object",
            "description": "The contact as a workflow action sends it: v3 (`properties` "
            "of plain values) or legacy (`vid`, `properties.*.value`).",
            "properties": {"id": {"type": "string"}, "properties": {"type": "object"}},
            "required": ["properties"],
        },
        {
            "title": "Forms submission",
            "type": "object",
            "properties": {
                "portalId": {"type": "integer"},
                "formGuid": {"type": "string"},
                "submittedAt": {"type": "string", "description": "Milliseconds since the epoch."},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                        "required": ["name", "value"],
                    },
                },
                "context": {"type": "object"},
            },
            "required": ["fields"],
        },
    ]
}


def _header(name: str, description: str, example: str) -> dict[str, Any]:
    return {
        "in": "header",
        "name": name,
        "required": False,
        "schema": {"type": "string"},
        "description": description,
        "example": example,
    }


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookError"}}},
    }


_OPERATION = {
    "operationId": "webhooks_hubspot_forms_create",
    "summary": "Receive a signed HubSpot delivery",
    "description": (
        "Verifies the signature over the raw body first (v3, else v2/v1), then stores each "
        "item once (duplicates are counted, not stored again) and answers 202 before any "
        "processing. Events are routed by subscriptionType: contact creation (and "
        "LEAD_EVENT_TYPES) are leads, one lead makes one workflow whichever way it came, "
        "other events are kept as ignored deliveries, and a malformed event is refused "
        "without sinking its batch. A signed item with a missing or invalid email is stored, "
        "not refused. "
        "The trailing slash is optional. Not authenticated by session or token: the HMAC "
        "signature with the app's client secret is the authentication."
    ),
    "tags": ["webhooks"],
    "security": [],
    "parameters": [
        _header(
            "X-HubSpot-Signature-v3",
            "v3: base64 HMAC-SHA256 of method + URI + body + timestamp with the client secret.",
            "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=",
        ),
        _header(
            "X-HubSpot-Request-Timestamp",
            "v3: milliseconds since the epoch; stale or far-future timestamps are refused.",
            "1764235200000",
        ),
        _header(
            "X-HubSpot-Signature",
            "v1/v2: hex SHA-256 of secret + body (v1) or secret + method + URI + body (v2).",
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
        ),
        _header("X-HubSpot-Signature-Version", "v1 or v2 (with X-HubSpot-Signature).", "v1"),
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": _BODY_SCHEMA,
                "examples": {
                    "events": {"summary": "Webhooks API events", "value": _EVENTS_EXAMPLE},
                    "workflow_contact": {
                        "summary": "Workflow webhook (contact)",
                        "value": _WORKFLOW_CONTACT_EXAMPLE,
                    },
                    "forms": {"summary": "Forms submission", "value": _FORMS_EXAMPLE},
                },
            }
        },
    },
    "responses": {
        "202": {
            "description": "Stored; processing happens in the background.",
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/WebhookAccepted"},
                    "example": {
                        "accepted": 1,
                        "duplicates": 0,
                        "submission_ids": [42],
                        "joined": 0,
                        "joined_leads": [],
                        "workflows_started": 1,
                        "workflow_ids": [17],
                        "ignored": 1,
                        "applied": [],
                        "refused": [],
                    },
                }
            },
        },
        "400": _error(
            "The request as a whole is malformed: not JSON, no recognised shape, or more "
            "than 100 events. The signed body is kept once as a refused non-lead delivery "
            "for review. (A malformed event inside a batch is refused on its own: 202.)"
        ),
        "401": _error("Missing, stale or wrong signature."),
        "405": _error("Only POST is allowed."),
        "413": _error(
            "Body larger than WEBHOOK_MAX_BODY_BYTES. A signed one up to "
            "WEBHOOK_KEEP_OVERSIZE_BYTES is kept, refused, for review."
        ),
        "415": _error("Content-Type is not application/json."),
        "503": _error(
            "Webhook secret not configured, or the database is unavailable (HubSpot retries)."
        ),
    },
}

_COMPONENTS = {
    "WebhookAccepted": {
        "type": "object",
        "properties": {
            "accepted": {"type": "integer", "description": "New lead items stored."},
            "duplicates": {"type": "integer", "description": "Items already stored before."},
            "submission_ids": {"type": "array", "items": {"type": "integer"}},
            "joined": {
                "type": "integer",
                "description": "Stored items of a lead that already has a workflow.",
            },
            "joined_leads": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "submission_id": {"type": "integer"},
                        "workflow_id": {"type": "integer", "nullable": True},
                    },
                },
                "description": "Each joined item's submission id and the workflow of the lead "
                "it joined (the number the dashboard shows; no new workflow started).",
            },
            "workflows_started": {"type": "integer", "description": "New leads."},
            "workflow_ids": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "The new leads' workflow ids: the number the dashboard, admin "
                "and API show for each (submission ids are the stored deliveries).",
            },
            "ignored": {
                "type": "integer",
                "description": "Events that are not leads (other objects, association "
                "changes, unconfigured property changes), kept for operators.",
            },
            "applied": {
                "type": "array",
                "items": {"type": "string"},
                "description": "What each contact merge, deletion or privacy deletion did.",
            },
            "refused": {
                "type": "array",
                "description": "Malformed events of the batch, recorded with the reason; "
                "the other events are stored.",
                "items": {
                    "type": "object",
                    "properties": {"index": {"type": "integer"}, "reason": {"type": "string"}},
                },
            },
            "ignored_query_parameters": {
                "type": "object",
                "description": "v1 only: query parameters not covered by the signature, "
                "which were not used.",
                "properties": {
                    "names": {"type": "array", "items": {"type": "string"}},
                    "reason": {"type": "string"},
                },
            },
        },
        "required": [
            "accepted",
            "duplicates",
            "submission_ids",
            "joined",
            "joined_leads",
            "workflows_started",
            "workflow_ids",
            "ignored",
            "applied",
            "refused",
        ],
    },
    "WebhookError": {
        "type": "object",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
    },
}


def add_webhook(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: add the webhook operation and its components."""
    result.setdefault("paths", {})[WEBHOOK_PATH] = {"post": _OPERATION}
    result.setdefault("components", {}).setdefault("schemas", {}).update(_COMPONENTS)
    return result
