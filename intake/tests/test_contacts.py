"""HubSpot's contact lifecycle events: deletion stops, merge re-points, privacy deletion erases."""

from __future__ import annotations

import subprocess

import pytest
from django.db import connection

from intake.models import FormSubmission, NonLeadDelivery
from intake.tasks import erase_contact
from intake.tests.test_identity import Lead1, deliver, run_pending
from intake.tests.test_routing import event
from outreach.models import Decision, EmailDraft
from workflows.models import AuditEvent, Status, Workflow


@pytest.fixture
def crm(hubspot_sandbox, settings):
    settings.CONTACT_SEARCH_LAG_RETRIES = 0
    return hubspot_sandbox


@pytest.mark.django_db
def test_a_contact_deletion_stops_its_open_workflows_without_draft_or_task(crm, post_webhook):
    waiting, pending = Lead1(1, contact_id="601"), Lead1(2, contact_id="602")
    crm.seed_contact(id=waiting.contact_id, email=waiting.email)
    deliver(waiting, "event")
    run_pending()
    deliver(pending, "event")

    response = post_webhook(
        [
            event(10, "contact.deletion", objectId=601),
            event(11, "contact.deletion", objectId=602),
        ]
    )
    run_pending()

    assert response.status_code == 202
    assert response.json()["applied"] == [
        "contact 601 deleted in HubSpot: 1 open workflows stopped",
        "contact 602 deleted in HubSpot: 1 open workflows stopped",
    ]
    first = Workflow.objects.get(contact_id="601")
    assert (first.status, first.last_error) == (Status.REJECTED, "contact 601 deleted in HubSpot")
    # Its draft says so too (the API showed decision "pending" on a rejected workflow).
    draft = EmailDraft.objects.get(workflow=first)
    assert (draft.decision, draft.decision_reason) == (
        Decision.REJECTED,
        "contact 601 deleted in HubSpot",
    )
    assert draft.decided_at is not None and draft.approver is None
    second = Workflow.objects.get(submission__object_id="602")
    assert second.status == Status.COMPLETED and not hasattr(second, "draft")
    assert len(crm.requests("tasks.create")) == 1  # the first one's, made before the deletion
    assert NonLeadDelivery.objects.filter(outcome="applied").count() == 2


@pytest.mark.django_db
def test_a_merge_points_open_workflows_of_the_merged_contacts_at_the_primary(crm, post_webhook):
    lead = Lead1(3, contact_id="701")
    crm.seed_contact(id=lead.contact_id, email=lead.email)
    deliver(lead, "event")
    run_pending()

    response = post_webhook(
        [event(12, "contact.merge", primaryObjectId=799, mergedObjectIds=[701, 702])]
    )

    assert response.status_code == 202
    workflow = Workflow.objects.get()
    assert workflow.contact_id == "799"
    merged = AuditEvent.objects.get(action="contact.merged")
    assert merged.reason == "contact 701 merged into 799"
    # A later delivery for the primary contact joins this lead instead of starting another.
    post_webhook([event(13, "contact.creation", objectId=799)])
    assert Workflow.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_privacy_deletion_leaves_no_trace_of_the_person_in_the_database(
    crm, post_webhook, caplog
):
    if connection.vendor != "postgresql":
        pytest.skip("greps a pg_dump")
    lead = Lead1(4, contact_id="801")
    email, name, message = lead.email, "Zebulonia", f"A demo please ({lead.n})"
    crm.seed_contact(id=lead.contact_id, email=email, firstname=name)
    for path in ("workflow_body", "forms_post", "poll", "event"):
        deliver(lead, path)
    FormSubmission.objects.update(first_name=name)
    run_pending()
    assert EmailDraft.objects.filter(recipient=email).exists()
    assert name.encode() in dump() and email.encode() in dump()

    caplog.clear()
    response = post_webhook([event(20, "contact.privacyDeletion", objectId=801)])
    post_webhook(lead.forms_post())  # a redelivery after the erasure is not stored again
    run_pending()

    assert response.status_code == 202
    [summary] = response.json()["applied"]
    assert summary == "erased contact 801: 4 submissions, 1 workflows (1 stopped), 1 drafts"
    database = dump()
    for trace in (email, email.title(), name, message):
        assert trace.encode() not in database, trace
        assert trace not in caplog.text, trace
    assert FormSubmission.objects.count() == 4  # the rows stay, redacted
    assert FormSubmission.objects.filter(erased_at__isnull=False).count() == 4
    erased = AuditEvent.objects.get(action="contact.erased")
    assert erased.details == {
        "submissions": 4,
        "workflows": 1,
        "stopped": 1,
        "drafts": 1,
        "non_lead_deliveries": 0,
        "recipient_sends": 0,
    }


def dump() -> bytes:
    db = connection.settings_dict
    return subprocess.run(
        [
            "pg_dump",
            "--data-only",
            "-h",
            db["HOST"] or "127.0.0.1",
            "-p",
            str(db["PORT"] or 5432),
            "-U",
            db["USER"] or "postgres",
            db["NAME"],
        ],
        check=True,
        capture_output=True,
        env={"PGPASSWORD": db.get("PASSWORD") or ""},
    ).stdout


@pytest.mark.django_db
def test_a_privacy_deletion_mid_step_erases_again_after_the_lease(
    crm, post_webhook, django_capture_on_commit_callbacks, settings
):
    lead = Lead1(5, contact_id="805")
    deliver(lead, "forms_post")
    workflow = Workflow.objects.get()
    # A worker resolved the contact and is now inside the draft step.
    Workflow.objects.filter(pk=workflow.pk).update(
        status=Status.RUNNING, claimed_by="w-1", contact_id="805"
    )

    with django_capture_on_commit_callbacks() as callbacks:
        post_webhook([event(21, "contact.privacyDeletion", objectId=805)])
    # The worker's step, already under way, writes its result after the erasure.
    Workflow.objects.filter(pk=workflow.pk).update(contact={"email": lead.email})
    erase_contact("805")  # what the scheduled task runs once the lease is over

    assert any("erase_again" in repr(callback) for callback in callbacks)
    assert Workflow.objects.get().contact == {}
    assert AuditEvent.objects.filter(action="contact.erased_again").count() == 1


@pytest.mark.django_db
def test_a_privacy_deletion_behind_its_deletion_still_erases(crm, post_webhook):
    # One GDPR delete in HubSpot sends contact.deletion and contact.privacyDeletion for the
    # same contact at the same moment. Their dedupe keys once ignored the type, so when the
    # deletion came first the erasure was kept as its "duplicate" and never applied.
    lead = Lead1(5, contact_id="901")
    deliver(lead, "workflow_body")
    same = {"objectId": 901, "occurredAt": 1764201600000}
    response = post_webhook(
        [event(30, "contact.deletion", **same), event(30, "contact.privacyDeletion", **same)]
    )

    assert response.status_code == 202
    assert response.json()["duplicates"] == 0
    assert [s.split(":")[0] for s in response.json()["applied"]] == [
        "contact 901 deleted in HubSpot",
        "erased contact 901",
    ]
    assert NonLeadDelivery.objects.filter(event_type="contact.privacyDeletion").exists()
    assert FormSubmission.objects.get().erased_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_privacy_deletion_erases_the_address_from_kept_events_and_the_cooldown(
    crm, post_webhook, settings
):
    # Found by the stop-23 security review: the erasure left the address in a kept
    # property-change event and in the recipient cooldown row of a lead already emailed.
    if connection.vendor != "postgresql":
        pytest.skip("greps a pg_dump")
    from django.core import mail

    from outreach.models import RecipientSend
    from outreach.services import email_send

    settings.API_ENV = "production"
    settings.MODE_DRAFT_ONLY = False
    settings.ALLOW_AUTO_SEND = True
    settings.SEND_EMAIL_ALLOWLIST = ["@example.com"]
    lead = Lead1(41, contact_id="8841")
    crm.seed_contact(id=lead.contact_id, email=lead.email, firstname="Ada")
    deliver(lead, "event")
    run_pending()
    for workflow in Workflow.objects.filter(status="sending"):
        email_send(workflow_id=workflow.pk)
    # HubSpot reports the contact's email: not a lead, kept as an ignored delivery.
    post_webhook(
        [
            event(
                43,
                "contact.propertyChange",
                objectId=8841,
                propertyName="email",
                **{"propertyValue": lead.email},
            )
        ]
    )
    # A signed body that names the address but is of no known shape: kept, refused.
    post_webhook({"note": f"please call {lead.email}"})
    assert len(mail.outbox) == 1 and RecipientSend.objects.filter(recipient=lead.email).exists()
    assert NonLeadDelivery.objects.count() == 2
    assert lead.email.encode() in dump()

    response = post_webhook([event(44, "contact.privacyDeletion", objectId=8841)])
    run_pending()

    assert response.status_code == 202
    assert [line for line in dump().splitlines() if lead.email.encode() in line] == []
    erased = AuditEvent.objects.get(action="contact.erased").details
    assert (erased["non_lead_deliveries"], erased["recipient_sends"]) == (2, 1)


@pytest.mark.django_db
def test_a_privacy_deletion_leaves_other_objects_and_other_addresses_alone(crm, post_webhook):
    # A deal shares the contact's id (ids are unique only per type), and "jada.6@example.com"
    # contains the erased "ada.6@example.com": neither is the person's (stop 23's review).
    lead = Lead1(6, contact_id="8861")
    deliver(lead, "workflow_body")
    post_webhook(
        [
            event(61, "deal.creation", objectId=8861),
            event(62, "object.propertyChange", objectId=8861, objectTypeId="0-3",
                  propertyName="dealname", propertyValue="Ada's deal"),
        ]
    )  # fmt: skip
    post_webhook({"note": f"please call j{lead.email}"})  # refused, another person's address
    post_webhook({"note": f"please call {lead.email}."})  # refused, this person's address

    post_webhook([event(63, "contact.privacyDeletion", objectId=8861)])

    erased = {"erased": True}
    refused = [row.raw_payload for row in NonLeadDelivery.objects.filter(outcome="refused")]
    assert sorted(map(str, refused)) == sorted(
        [str(erased), str({"body_text": f'{{"note": "please call j{lead.email}"}}'})]
    )
    others = NonLeadDelivery.objects.filter(
        event_type__in=["deal.creation", "object.propertyChange"]
    )
    assert len(others) == 2 and all(row.raw_payload != erased for row in others)
