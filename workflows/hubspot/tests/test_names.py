"""Names, not ids: form and owner names from the sandbox, cached, shown with the id on hover."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from workflows.hubspot import names
from workflows.hubspot.client import process_throttle
from workflows.hubspot.models import HubSpotName, NameKind

FORM = "4f2b7c1e-9a3d-4b8e-8f6a-2c1d0e9b7a55"


@pytest.fixture
def hubspot(hubspot_sandbox):
    names._local.clear()
    return hubspot_sandbox


def render(text: str) -> str:
    return Template("{% load hubspot_names %}" + text).render(Context({}))


@pytest.mark.django_db
def test_form_and_owner_names_come_from_hubspot_and_keep_the_id_on_hover(hubspot):
    assert names.names_refresh(kind=NameKind.FORM, ids=[FORM]) == {FORM: "Contact us"}
    assert names.names_refresh(kind=NameKind.OWNER, ids=["1001"]) == {"1001": "Avery Owner"}

    assert render(f"{{{{ '{FORM}'|form_name }}}}") == f'<span title="{FORM}">Contact us</span>'
    assert render("{{ '1001'|owner_name }}") == '<span title="1001">Avery Owner</span>'
    assert [r.path for r in hubspot.requests("forms.get")] == [f"/marketing/v3/forms/{FORM}"]


@pytest.mark.django_db
def test_a_deactivated_owner_is_named_and_marked_deactivated(hubspot):
    hubspot.seed_owner(id="1003", email="gone@example.com", firstName="Gale", archived=True)

    assert names.names_refresh(kind=NameKind.OWNER, ids=["1003"]) == {"1003": "Gale (deactivated)"}
    assert HubSpotName.objects.get(kind=NameKind.OWNER, hubspot_id="1003").name == (
        "Gale (deactivated)"
    )


@pytest.mark.django_db
def test_an_unknown_id_is_shown_as_it_is_and_remembered_as_unknown(hubspot):
    assert names.names_refresh(kind=NameKind.OWNER, ids=["999"]) == {"999": ""}

    assert render("{{ '999'|owner_name }}") == '<span title="999">999</span>'
    assert HubSpotName.objects.get(kind=NameKind.OWNER, hubspot_id="999").name == ""


@pytest.mark.django_db
def test_a_value_that_would_leave_the_path_is_quoted(hubspot):
    names.names_refresh(kind=NameKind.FORM, ids=["../../crm/v3/owners/1001"])

    [request] = hubspot.requests()
    assert request.endpoint == "forms.get"  # not owners.get: the slashes stayed in the segment


@pytest.mark.django_db
def test_the_dashboard_shows_the_daily_limit_pause(client, operator, settings):
    client.force_login(operator)
    operator_client = client
    settings.CELERY_BROKER_URL = "memory://"
    throttle = process_throttle("memory://")
    page = operator_client.get("/dashboard/")
    assert b"hubspot-halt" not in page.content

    throttle.halt(600)
    try:
        page = operator_client.get("/dashboard/")
    finally:
        throttle._backend.halted_until = 0.0
    assert b"daily API limit is reached" in page.content


@pytest.mark.django_db
def test_a_miss_asks_the_worker_once_and_a_broker_outage_never_breaks_the_page(broker_down):
    names._local.clear()
    names._requested.clear()
    names._publish_blocked_until = 0.0

    page = render("{{ 'owner-a'|owner_name }} {{ 'owner-b'|owner_name }}")

    assert page == '<span title="owner-a">owner-a</span> <span title="owner-b">owner-b</span>'
    assert (NameKind.OWNER, "owner-a") in names._requested
    assert (NameKind.OWNER, "owner-b") not in names._requested  # held back after a failure
    names._publish_blocked_until = 0.0
