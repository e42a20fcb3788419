"""The HubSpot samples in tests/data: each listed with its documentation page, each read by
intake the way the page says (leads become leads; every other event is kept, not refused)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intake.payloads import parse_delivery, parse_forms_api_submission
from intake.routing import Route, decide

DATA = Path(__file__).parent / "data"
SAMPLES = sorted(p.name for p in DATA.glob("*.json"))
LEADS = {
    "events-contact-creation.json",
    "events-batch.json",
    "event-object-creation-contact.json",
    "workflow-contact-v3.json",
    "workflow-contact-legacy.json",
    "forms-submission.json",
}


def test_every_sample_is_listed_with_a_hubspot_documentation_page():
    readme = (DATA / "README.md").read_text()
    for name in SAMPLES:
        [row] = [line for line in readme.splitlines() if line.startswith(f"| `{name}` |")]
        assert "https://" in row and "hubspot.com" in row


# A generic association change names its objects' types in fromObjectTypeId/toObjectTypeId
# (HubSpot's changelog: only creation, deletion, merge, restore and property change carry
# objectTypeId); intake reads it by those and routes it as an ignored delivery.
DELIVERIES = [n for n in SAMPLES if n != "forms-api-submissions.json"]


@pytest.mark.parametrize("name", DELIVERIES)
def test_each_delivery_sample_is_read_without_refusal_and_routed_by_what_it_is(name):
    delivery = parse_delivery((DATA / name).read_bytes())

    assert delivery.items and not delivery.refused
    routes = {decide(item, ["contact.creation"]).route for item in delivery.items}
    if name in LEADS:
        assert Route.LEAD in routes
    else:
        assert Route.LEAD not in routes


def test_the_forms_api_sample_is_a_lead_item():
    page = json.loads((DATA / "forms-api-submissions.json").read_text())

    item = parse_forms_api_submission(page["results"][0], portal_id=62515, form_id="f")

    assert item.email == "grace@navy.example.mil" and item.conversion_id
