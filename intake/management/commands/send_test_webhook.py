"""Send a realistic, correctly signed HubSpot webhook to a running Leadline.

Every run builds new ids and timestamps, so each delivery is a new submission:

    python manage.py send_test_webhook
    python manage.py send_test_webhook --shape events --batch-size 100 --signature v2
    python manage.py send_test_webhook --url https://leads.example.com/api/webhooks/hubspot/forms
"""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from intake.signatures import signed_headers

DEFAULT_PORTAL_ID = 62515
DEFAULT_FORM_ID = "4f2b7c1e-9a3d-4b8e-8f6a-2c1d0e9b7a55"


class Command(BaseCommand):
    help = "POST a signed test webhook (forms, workflow or events shape) and print the answer."

    def add_arguments(self, parser: CommandParser) -> None:
        port = settings.PORT
        parser.add_argument("--url", default=f"http://127.0.0.1:{port}/api/webhooks/hubspot/forms")
        parser.add_argument("--shape", choices=("forms", "workflow", "events"), default="forms")
        parser.add_argument("--email", help="lead email (default: a new test address per run)")
        parser.add_argument("--signature", choices=("v3", "v2", "v1"), default="v3")
        parser.add_argument("--count", type=int, default=1, help="number of requests to send")
        parser.add_argument(
            "--batch-size", type=int, default=1, help="events per request (--shape events)"
        )
        parser.add_argument("--form-id", default=DEFAULT_FORM_ID, help="formGuid (--shape forms)")
        parser.add_argument("--portal-id", type=int, default=DEFAULT_PORTAL_ID)

    def handle(self, *args: Any, **options: Any) -> None:
        secret = settings.HUBSPOT_CLIENT_SECRET
        if not secret:
            raise CommandError("HUBSPOT_CLIENT_SECRET is not set; the webhook would answer 503.")
        if options["count"] < 1 or not 1 <= options["batch_size"] <= 100:
            raise CommandError("--count must be at least 1; --batch-size between 1 and 100.")
        failures = 0
        for _ in range(options["count"]):
            body = json.dumps(build_payload(**options), ensure_ascii=False).encode()
            response = self._post(options["url"], body, secret, options["signature"])
            self.stdout.write(f"{response.status_code} {_describe(response)}")
            failures += not response.ok
        if failures:
            raise CommandError(f"{failures} of {options['count']} requests were not accepted.")

    def _post(self, url: str, body: bytes, secret: str, version: str) -> requests.Response:
        request = requests.Request(
            "POST", url, data=body, headers={"Content-Type": "application/json"}
        ).prepare()
        # Sign the URL exactly as requests will send it (it may re-quote what was typed).
        request.headers.update(
            signed_headers(
                secret=secret, version=version, method="POST", uri=request.url, body=body
            )
        )
        try:
            with requests.Session() as session:
                return session.send(request, timeout=10)
        except requests.RequestException as exc:
            raise CommandError(f"could not POST to {url}: {exc}. Is Leadline running?") from exc


def build_payload(
    *,
    shape: str,
    email: str | None,
    form_id: str,
    portal_id: int,
    batch_size: int = 1,
    **_: Any,
) -> Any:
    """A body shaped like the samples HubSpot sends, with fresh ids and timestamps."""
    now_ms = int(time.time() * 1000)
    token = uuid.uuid4().hex[:10]
    email = email or f"test.lead+{token}@example.com"
    if shape == "events":
        return [_event(portal_id, now_ms + i) for i in range(batch_size)]
    if shape == "workflow":
        contact_id = str(random.randint(10**6, 10**9))
        return {
            "id": contact_id,
            "portalId": portal_id,
            "properties": {
                "email": email,
                "firstname": "Ada",
                "lastname": "Lovelace",
                "company": "Analytical Engines Ltd",
                "phone": "+44 20 7946 0000",
                "message": "We'd like a demo for a team of 40 next week.",
                "lifecyclestage": "lead",
                "hs_object_id": contact_id,
                "recent_conversion_date": str(now_ms),
            },
            "createdAt": _iso(now_ms),
            "updatedAt": _iso(now_ms),
            "archived": False,
        }
    return {
        "portalId": portal_id,
        "formGuid": form_id,
        "submittedAt": str(now_ms),
        "fields": [
            {"objectTypeId": "0-1", "name": "email", "value": email},
            {"objectTypeId": "0-1", "name": "firstname", "value": "Grace"},
            {"objectTypeId": "0-1", "name": "lastname", "value": "Hopper"},
            {"objectTypeId": "0-1", "name": "company", "value": "Compiler Works"},
            {"objectTypeId": "0-1", "name": "message", "value": "Interested in pricing."},
        ],
        "context": {
            "hutk": uuid.uuid4().hex,
            "pageUri": "https://www.example.com/pricing",
            "pageName": "Pricing",
        },
    }


def _event(portal_id: int, occurred_at: int) -> dict[str, Any]:
    return {
        "eventId": random.randint(1, 2**31),
        "subscriptionId": 12345,
        "portalId": portal_id,
        "appId": 54321,
        "occurredAt": occurred_at,
        "subscriptionType": "contact.creation",
        "attemptNumber": 0,
        "objectId": random.randint(10**6, 10**9),
        "changeSource": "FORM",
        "changeFlag": "NEW",
    }


def _iso(millis: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis / 1000)) + f".{millis % 1000:03d}Z"


def _describe(response: requests.Response) -> str:
    try:
        return json.dumps(response.json())
    except ValueError:
        return response.text[:500]
