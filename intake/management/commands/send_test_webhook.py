"""Send a realistic, correctly signed HubSpot webhook to a running Leadline.

Every run builds new ids and timestamps, so each delivery is a new submission, and picks its
lead from varied samples (names, companies, an owner or none):

    python manage.py send_test_webhook
    python manage.py send_test_webhook --shape events --batch-size 100 --signature v2
    python manage.py send_test_webhook --shape mixed      # contact, deal, company, association
                                                          # change and a malformed event
    python manage.py send_test_webhook --url https://leads.example.com/api/webhooks/hubspot/forms

With no --url it posts to the running `make run` (var/run/<port>/instance.json, see
config/runstate.py), or to PORT when that is set, and signs with HUBSPOT_CLIENT_SECRET or else
the development secret `make run` wrote to var/dev-client-secret. It prints the answer, then
the workflow numbers the dashboard shows, each with its submission id labelled as such; a
delivery that joined an existing lead (no new workflow) gets a line naming that lead's workflow.

When HUBSPOT_API_BASE_URL (or the running `make run`'s) is the local sandbox (`manage.py
hubspot_sandbox`), the contacts the events and workflow bodies name are created there first,
with their owner, so the CRM steps find them. Against real HubSpot, the ids are made up: use
the forms shape.
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

from config import runstate
from intake.signatures import signed_headers

DEFAULT_PORTAL_ID = 62515
DEFAULT_FORM_ID = "4f2b7c1e-9a3d-4b8e-8f6a-2c1d0e9b7a55"
SHAPES = ("forms", "workflow", "events", "mixed")
#: Sample leads: who fills the form, and which HubSpot owner (if any) the contact has.
SAMPLE_LEADS = (
    ("Grace", "Hopper", "Compiler Works", "compiler.example", "1001", "Pricing for 3 sites?"),
    ("Ada", "Lovelace", "Analytical Engines Ltd", "engines.example", None, "A demo next week."),
    ("Katherine", "Johnson", "Orbit Analytics", "orbit.example", "1002", "Do you integrate?"),
    ("Alan", "Turing", "", "gmail.example", None, "Just looking for a price list."),
    ("Margaret", "Hamilton", "Apollo Software", "apollo.example", "1001", "Call me back."),
    ("Tim", "Berners-Lee", "Web Consortium", "w3.example", None, "Partnership enquiry."),
)
SAMPLE_OWNERS = (
    {"id": "1001", "email": "avery@example.com", "firstName": "Avery", "lastName": "Owner"},
    {"id": "1002", "email": "blake@example.com", "firstName": "Blake", "lastName": "Rep"},
)


class Command(BaseCommand):
    help = "POST a signed test webhook (forms, workflow or events shape) and print the answer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url",
            help="webhook URL (default: the running `make run`, else http://127.0.0.1:$PORT)",
        )
        parser.add_argument("--shape", choices=SHAPES, default="forms")
        parser.add_argument("--email", help="lead email (default: a new test address per run)")
        parser.add_argument("--signature", choices=("v3", "v2", "v1"), default="v3")
        parser.add_argument("--count", type=int, default=1, help="number of requests to send")
        parser.add_argument(
            "--batch-size", type=int, default=1, help="events per request (--shape events)"
        )
        parser.add_argument("--form-id", default=DEFAULT_FORM_ID, help="formGuid (--shape forms)")
        parser.add_argument("--portal-id", type=int, default=DEFAULT_PORTAL_ID)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["count"] < 1 or not 1 <= options["batch_size"] <= 100:
            raise CommandError("--count must be at least 1; --batch-size between 1 and 100.")
        instance = _running_instance() if not options["url"] else {}
        port = instance.get("port") or settings.PORT
        url = options["url"] or f"http://127.0.0.1:{port}/api/webhooks/hubspot/forms"
        secret = settings.HUBSPOT_CLIENT_SECRET or _instance_secret(instance)
        if not secret:
            raise CommandError(
                "HUBSPOT_CLIENT_SECRET is not set and there is no var/dev-client-secret "
                "(`make run` writes it); the webhook would answer 503."
            )
        sandbox = _sandbox_url(settings.HUBSPOT_API_BASE_URL) or _sandbox_url(
            instance.get("sandbox_url", "")
        )
        dashboard = url.split("/api/", 1)[0] + "/dashboard/workflows/"
        if sandbox and options["shape"] != "forms":
            # The owners the sample contacts name, once for every request (the forms shape
            # names no contact).
            _seed_owners(sandbox)
        failures = 0
        for _ in range(options["count"]):
            payload = build_payload(**options)
            if sandbox:
                _seed_sandbox(sandbox, payload)
            body = json.dumps(body_of(payload), ensure_ascii=False).encode()
            response = self._post(url, body, secret, options["signature"])
            self.stdout.write(f"{response.status_code} {_describe(response)}")
            for line in _workflow_lines(response, dashboard):
                self.stdout.write(line)
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
    """A body shaped like the samples HubSpot sends, with fresh ids, timestamps and leads.

    Events and workflow bodies carry `_leads` on the side (popped before sending): the
    contacts they name, for seeding the sandbox."""
    now_ms = int(time.time() * 1000)
    if shape in ("events", "mixed"):
        leads = [_lead(email if i == 0 else None) for i in range(batch_size)]
        events = [_event(portal_id, now_ms + i, lead["id"]) for i, lead in enumerate(leads)]
        if shape == "mixed":
            events += _not_leads(portal_id, now_ms)
        return {"_leads": leads, "events": events}
    lead = _lead(email)
    if shape == "workflow":
        return {
            "_leads": [lead],
            "body": {
                "id": lead["id"],
                "portalId": portal_id,
                "properties": {
                    "email": lead["email"],
                    "firstname": lead["firstname"],
                    "lastname": lead["lastname"],
                    "company": lead["company"],
                    "message": lead["message"],
                    "lifecyclestage": "lead",
                    "hs_object_id": lead["id"],
                    "hubspot_owner_id": lead["owner_id"] or "",
                    "recent_conversion_date": str(now_ms),
                },
                "createdAt": _iso(now_ms),
                "updatedAt": _iso(now_ms),
                "archived": False,
            },
        }
    fields = [("email", lead["email"]), ("firstname", lead["firstname"])]
    fields += [("lastname", lead["lastname"]), ("company", lead["company"])]
    fields += [("message", lead["message"])]
    return {
        "portalId": portal_id,
        "formGuid": form_id,
        "submittedAt": str(now_ms),
        "fields": [{"objectTypeId": "0-1", "name": n, "value": v} for n, v in fields if v],
        "context": {
            "hutk": uuid.uuid4().hex,
            "pageUri": "https://www.example.com/pricing",
            "pageName": "Pricing",
        },
    }


def body_of(payload: Any) -> Any:
    """What goes on the wire: the payload without the side notes for the sandbox."""
    if isinstance(payload, dict) and "_leads" in payload:
        return payload.get("events", payload.get("body"))
    return payload


def _lead(email: str | None) -> dict[str, Any]:
    first, last, company, domain, owner, message = random.choice(SAMPLE_LEADS)
    token = uuid.uuid4().hex[:8]
    return {
        "id": str(random.randint(10**6, 10**9)),
        "email": email or f"{first.lower()}.{last.lower()}+{token}@{domain}",
        "firstname": first,
        "lastname": last,
        "company": company,
        "owner_id": owner,
        "message": message,
    }


def _event(portal_id: int, occurred_at: int, object_id: str) -> dict[str, Any]:
    return {
        "eventId": random.randint(1, 2**31),
        "subscriptionId": 12345,
        "portalId": portal_id,
        "appId": 54321,
        "occurredAt": occurred_at,
        "subscriptionType": "contact.creation",
        "attemptNumber": 0,
        "objectId": int(object_id),
        "changeSource": "FORM",
        "changeFlag": "NEW",
    }


def _not_leads(portal_id: int, now_ms: int) -> list[Any]:
    """Events a real portal sends beside contact creations; none of them is a lead."""
    common = {"subscriptionId": 12346, "portalId": portal_id, "appId": 54321, "attemptNumber": 0}

    def event(**fields: Any) -> dict[str, Any]:
        return {"eventId": random.randint(1, 2**31), "occurredAt": now_ms, **common, **fields}

    deal_id = random.randint(10**6, 10**9)
    return [
        event(subscriptionType="deal.creation", objectId=deal_id, changeFlag="NEW"),
        event(
            subscriptionType="company.propertyChange",
            objectId=random.randint(10**6, 10**9),
            propertyName="industry",
            propertyValue="SOFTWARE",
        ),
        event(subscriptionType="object.creation", objectTypeId="0-3", objectId=deal_id),
        event(
            subscriptionType="contact.associationChange",
            fromObjectId=random.randint(10**6, 10**9),
            toObjectId=deal_id,
            associationType="CONTACT_TO_DEAL",
            associationRemoved=False,
        ),
        {"eventId": random.randint(1, 2**31), "portalId": portal_id, "note": "malformed"},
    ]


def _running_instance() -> dict[str, Any]:
    """The `make run` to post to: the one on $PORT, else the only one running, else none."""
    try:
        return runstate.running_instance()
    except runstate.SeveralInstances as several:
        raise CommandError(str(several)) from None


def _instance_secret(instance: dict[str, Any]) -> str:
    secret_file = instance.get("secret_file")
    if secret_file:
        try:
            return (settings.BASE_DIR / secret_file).read_text().strip()
        except OSError:
            return ""
    return runstate.dev_client_secret()


def _workflow_lines(response: requests.Response, dashboard: str) -> list[str]:
    """The workflow numbers the dashboard shows; submission ids only labelled as such. A
    delivery that joined an existing lead started no workflow: its line names the lead's."""
    try:
        answer = response.json()
    except ValueError:
        return []
    if not isinstance(answer, dict):
        return []
    lines = [f"  workflow #{pk}: {dashboard}{pk}/" for pk in answer.get("workflow_ids") or []]
    for joined in answer.get("joined_leads") or []:
        pk = joined.get("workflow_id")
        lead = f"workflow #{pk}: {dashboard}{pk}/" if pk else "a lead without a workflow"
        lines.append(
            f"  submission {joined.get('submission_id')} joined an existing lead (no new "
            f"workflow): {lead}"
        )
    if answer.get("joined") and not answer.get("joined_leads"):  # a server without the list
        lines.append(f"  {answer['joined']} joined an existing lead (no new workflow)")
    if not answer.get("workflow_ids"):
        return lines
    submissions = ", ".join(str(i) for i in answer.get("submission_ids", []))
    if submissions:
        lines.append(f"  (submission id{'s' if ',' in submissions else ''} {submissions})")
    return lines


def _sandbox_url(base: str) -> str:
    """``base`` when it is the local sandbox (it has a control API), else ""."""
    return runstate.local_sandbox(base)


def _seed_owners(base: str) -> None:
    """Create the SAMPLE_OWNERS the sample contacts name, so the CRM steps find them."""
    requests.post(f"{base}/__sandbox__/owners", json={"owners": SAMPLE_OWNERS}, timeout=5)


def _seed_sandbox(base: str, payload: Any) -> None:
    """Create the contacts the payload names (their owners: _seed_owners), so the CRM steps
    find them."""
    leads = payload.get("_leads", []) if isinstance(payload, dict) else []
    if not leads:
        return
    contacts = [
        {
            "id": lead["id"],
            "email": lead["email"],
            "firstname": lead["firstname"],
            "lastname": lead["lastname"],
            "company": lead["company"],
            **({"owner_id": lead["owner_id"]} if lead["owner_id"] else {}),
        }
        for lead in leads
    ]
    requests.post(f"{base}/__sandbox__/contacts", json={"contacts": contacts}, timeout=5)


def _iso(millis: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis / 1000)) + f".{millis % 1000:03d}Z"


def _describe(response: requests.Response) -> str:
    try:
        return json.dumps(response.json())
    except ValueError:
        return response.text[:500]
