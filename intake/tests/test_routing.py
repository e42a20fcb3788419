"""Every Webhooks API event is routed by what it is; one bad event never sinks its batch."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import REGISTRY

from intake.models import FormSubmission, NonLeadDelivery
from intake.routing import validate_lead_event_types
from intake.tests.conftest import WEBHOOK_PATH
from workflows.models import Workflow

pytestmark = pytest.mark.django_db

PORTAL = 62515


def event(event_id: int, subscription: str, **fields: object) -> dict:
    return {
        "eventId": event_id,
        "subscriptionId": 1,
        "portalId": PORTAL,
        "appId": 2,
        "occurredAt": 1764201600000 + event_id,
        "subscriptionType": subscription,
        "attemptNumber": 0,
        "changeSource": "CRM_UI",
    } | fields


def mixed_batch(contact_id: int = 7001) -> list[dict]:
    """What a real portal sends when the app subscribes to more than contact creation.
    The deal shares the contact's id on purpose: ids are unique only per object type."""
    return [
        event(1, "contact.creation", objectId=contact_id),
        event(2, "deal.creation", objectId=contact_id),
        event(3, "company.propertyChange", objectId=88, propertyName="name", propertyValue="X"),
        event(4, "object.creation", objectTypeId="0-3", objectId=contact_id + 1),
        event(
            5,
            "contact.associationChange",
            fromObjectId=contact_id,
            toObjectId=99,
            associationType="CONTACT_TO_COMPANY",
            associationRemoved=False,
        ),
        event(6, "contact.creation"),  # no objectId: malformed
    ]


def items_counted(route: str) -> float:
    return REGISTRY.get_sample_value("leadline_webhook_items_total", {"route": route}) or 0.0


def test_a_mixed_batch_is_acknowledged_and_only_the_contact_becomes_a_lead(post_webhook):
    ignored_before, refused_before = items_counted("ignored"), items_counted("refused")

    response = post_webhook(mixed_batch())

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["accepted"], body["workflows_started"], body["ignored"]) == (1, 1, 4)
    assert body["refused"] == [{"index": 5, "reason": "event 5 (contact.creation) lacks objectId"}]
    [submission] = FormSubmission.objects.all()
    assert (submission.object_id, submission.event_type) == ("7001", "contact.creation")
    assert Workflow.objects.get().submission_id == submission.pk
    kept = dict(NonLeadDelivery.objects.values_list("event_type", "reason"))
    assert kept == {
        "deal.creation": "deal events are not leads (deal.creation)",
        "company.propertyChange": "company events are not leads (company.propertyChange)",
        "object.creation": "deal events are not leads (object.creation)",
        "contact.associationChange": "association changes are not leads",
        "contact.creation": "event 5 (contact.creation) lacks objectId",
    }
    outcomes = sorted(NonLeadDelivery.objects.values_list("outcome", flat=True))
    assert outcomes == ["ignored"] * 4 + ["refused"]
    assert items_counted("ignored") - ignored_before == 4
    assert items_counted("refused") - refused_before == 1


def test_a_redelivered_mixed_batch_stores_nothing_twice(post_webhook):
    post_webhook(mixed_batch())
    again = [{**e, "attemptNumber": 1} for e in mixed_batch()]

    response = post_webhook(again)

    assert response.status_code == 202
    assert (response.json()["duplicates"], response.json()["ignored"]) == (1, 0)
    assert NonLeadDelivery.objects.count() == 5
    assert FormSubmission.objects.count() == Workflow.objects.count() == 1


def test_a_batch_of_only_unreadable_events_is_acknowledged_with_the_reasons(post_webhook):
    response = post_webhook([1, {"subscriptionType": "contact.creation"}])

    assert response.status_code == 202
    assert [r["index"] for r in response.json()["refused"]] == [0, 1]
    assert NonLeadDelivery.objects.filter(outcome="refused").count() == 2
    assert not Workflow.objects.exists()


def test_a_batch_over_hubspots_limit_fails_as_a_whole(post_webhook):
    response = post_webhook([event(n, "contact.creation", objectId=n) for n in range(101)])

    assert response.status_code == 400
    assert "at most 100" in response.json()["error"]
    assert not FormSubmission.objects.exists()
    assert NonLeadDelivery.objects.get().outcome == "refused", "kept whole, for review"


def test_a_generic_contact_creation_is_a_lead(post_webhook):
    response = post_webhook([event(1, "object.creation", objectTypeId="0-1", objectId=42)])

    assert response.json()["workflows_started"] == 1
    assert FormSubmission.objects.get().object_id == "42"


def test_a_property_change_is_a_lead_only_when_configured(post_webhook, settings):
    change = event(1, "contact.propertyChange", objectId=9, propertyName="lifecyclestage")
    other = event(2, "contact.propertyChange", objectId=10, propertyName="phone")
    settings.LEAD_EVENT_TYPES = ["contact.creation", "contact.propertyChange:lifecyclestage"]

    response = post_webhook([change, other])

    assert (response.json()["workflows_started"], response.json()["ignored"]) == (1, 1)
    assert NonLeadDelivery.objects.get().reason == (
        "contact.propertyChange of phone is not in LEAD_EVENT_TYPES"
    )


@pytest.mark.parametrize("entry", ["deal.creation", "contact.deletion", "object.creation"])
def test_lead_event_types_accepts_only_contact_events(entry):
    with pytest.raises(ImproperlyConfigured, match="LEAD_EVENT_TYPES"):
        validate_lead_event_types(["contact.creation", entry])


def test_operators_see_ignored_and_refused_deliveries_in_the_admin(post_webhook, admin_client):
    post_webhook(mixed_batch())

    page = admin_client.get("/admin/intake/nonleaddelivery/")
    refused = NonLeadDelivery.objects.get(outcome="refused")
    detail = admin_client.get(f"/admin/intake/nonleaddelivery/{refused.pk}/change/")

    assert page.status_code == 200
    assert b"deal events are not leads" in page.content
    assert b"association changes are not leads" in page.content
    assert b"lacks objectId" in detail.content


def test_one_v1_body_with_different_query_strings_is_stored_once(post_webhook):
    body = {
        "fields": [{"name": "email", "value": "replayed@example.com"}],
        "submittedAt": 1764201600000,
    }
    queries = ["", "?portalId=1", "?portalId=2", "?formId=x", "?portalId=3&formId=y"]

    responses = [post_webhook(body, path=WEBHOOK_PATH + q, version="v1") for q in queries]

    assert all(r.status_code == 202 for r in responses)
    assert [r.json()["accepted"] for r in responses] == [1, 0, 0, 0, 0]
    assert responses[1].json()["ignored_query_parameters"]["names"] == ["portalId"]
    assert "v1 signs the body only" in responses[1].json()["ignored_query_parameters"]["reason"]
    submission = FormSubmission.objects.get()
    assert (submission.portal_id, submission.form_id) == (None, "")
    assert Workflow.objects.count() == 1


def test_under_v2_the_signed_query_still_names_the_portal(post_webhook):
    body = {"fields": [{"name": "email", "value": "signed@example.com"}]}

    response = post_webhook(body, path=WEBHOOK_PATH + "?portalId=5&formId=f", version="v2")

    assert "ignored_query_parameters" not in response.json()
    assert FormSubmission.objects.values_list("portal_id", "form_id").get() == (5, "f")
