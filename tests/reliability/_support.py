"""Helpers shared by the fault tests: signed webhook posts and waiting for workflows."""

from __future__ import annotations

import json
import uuid

import requests

from tests.harness import form_body, signed_post
from workflows.models import Status, Step, Workflow

SETTLED = (Status.AWAITING_APPROVAL, Status.FAILED)
PATH = "/api/webhooks/hubspot/forms"


def post_lead(
    base_url: str, secret: str, *, timeout: float = 10, email: str | None = None
) -> requests.Response:
    """One signed Forms-style delivery for a new lead (a random address unless given)."""
    email = email or f"lead-{uuid.uuid4().hex[:12]}@example.com"
    body = form_body({"email": email}, form_id="reliability", page_uri=None)
    return signed_post(base_url, body, secret=secret, timeout=timeout)


def settled_count(submission_ids: list[int]) -> int:
    return (
        Workflow.objects.filter(
            submission_id__in=submission_ids, trigger="webhook", status__in=SETTLED
        )
        .exclude(step_log__contains={Step.RESOLVE_CONTACT: {"contact_pending": True}})
        .count()
    )


def ingest_leads(sandbox, n: int, *, prefix: str = "lead") -> list[int]:
    """Store ``n`` new leads as the webhook would, each a contact the sandbox knows, and
    return their workflow ids. Nothing is published here: the relay does."""
    from django.utils import timezone

    from intake.payloads import parse_body
    from intake.services import submissions_ingest

    ids: list[int] = []
    for i in range(n):
        email = f"{prefix}{i}-{uuid.uuid4().hex[:8]}@example.com"
        sandbox.seed_contact(email=email, firstname="Lee")
        body = {"portalId": 62515, "formId": prefix, "fields": [{"name": "email", "value": email}]}
        result = submissions_ingest(
            items=parse_body(json.dumps(body).encode(), query={}),
            signature_version="v3",
            received_at=timezone.now(),
        )
        ids += result.workflow_ids
    return ids


def claims_per_workflow(ids: list[int]) -> dict[int, int]:
    """How often each workflow went pending → running (a worker claimed it)."""
    from collections import Counter

    from workflows.models import AuditEvent

    return Counter(
        AuditEvent.objects.filter(
            workflow_id__in=ids,
            action="workflow.transition",
            from_status=Status.PENDING,
            to_status=Status.RUNNING,
        ).values_list("workflow_id", flat=True)
    )


def drafts_per_workflow(ids: list[int]) -> dict[int, int]:
    from collections import Counter

    from outreach.models import EmailDraft

    return Counter(
        EmailDraft.objects.filter(workflow_id__in=ids).values_list("workflow_id", flat=True)
    )


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants (Linux /proc)."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total
