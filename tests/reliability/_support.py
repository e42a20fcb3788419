"""Helpers shared by the fault tests: signed webhook posts and waiting for workflows."""

from __future__ import annotations

import json
import time
import uuid

import requests

from intake.signatures import signed_headers
from workflows.models import Status, Step, Workflow

SETTLED = (Status.AWAITING_APPROVAL, Status.FAILED)
PATH = "/api/webhooks/hubspot/forms"


def post_lead(base_url: str, secret: str, *, timeout: float = 10) -> requests.Response:
    """One signed Forms-style delivery for a new lead."""
    body = json.dumps(
        {
            "portalId": 62515,
            "formId": "reliability",
            "submittedAt": int(time.time() * 1000),
            "fields": [{"name": "email", "value": f"lead-{uuid.uuid4().hex[:12]}@example.com"}],
        }
    ).encode()
    url = f"{base_url}{PATH}"
    headers = signed_headers(secret=secret, version="v3", method="POST", uri=url, body=body)
    return requests.post(
        url, data=body, timeout=timeout, headers={"Content-Type": "application/json", **headers}
    )


def settled_count(submission_ids: list[int]) -> int:
    return (
        Workflow.objects.filter(
            submission_id__in=submission_ids, trigger="webhook", status__in=SETTLED
        )
        .exclude(step_log__contains={Step.RESOLVE_CONTACT: {"contact_pending": True}})
        .count()
    )
