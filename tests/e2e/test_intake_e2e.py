"""Issue #12 through the real stack: signed HTTP → intake → real Celery worker → sandbox.

A mixed Webhooks API batch makes exactly one lead, and no CRM call names a non-contact id;
one lead delivered three ways at once makes one draft and one CRM task; a privacy deletion
leaves no trace of the person in the database or the worker's log.
"""

from __future__ import annotations

import json
import threading

import pytest
import requests
from django.db import connection
from django.utils import timezone

from intake.models import FormSubmission, NonLeadDelivery, SignatureVersion
from intake.payloads import parse_forms_api_submission
from intake.services import submissions_ingest
from intake.tests.test_contacts import dump
from intake.tests.test_identity import FORM, PORTAL, Lead1
from intake.tests.test_routing import event, mixed_batch
from outreach.models import EmailDraft
from tests.harness import REPO, signed_post, wait_for
from workflows.models import Status, Trigger, Workflow

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SETTLED = (Status.AWAITING_APPROVAL, Status.FAILED, Status.COMPLETED, Status.REJECTED)


def post(live_server, body: bytes | list | dict) -> requests.Response:
    return signed_post(live_server.url, body)


def all_settled() -> bool:
    workflows = Workflow.objects.all()
    return workflows.exists() and not workflows.exclude(status__in=SETTLED).exists()


def test_a_mixed_batch_makes_one_lead_and_no_crm_call_names_another_object(e2e, live_server):
    e2e.seed_contact(id="7001", email="contact.7001@e2e.test", firstname="Rightful")
    # Unrelated people whose contact ids equal the deal's and the company's object ids.
    for other in ("7002", "88", "99"):
        e2e.seed_contact(id=other, email=f"wrong.{other}@e2e.test", firstname="Wrong")

    response = post(live_server, mixed_batch(contact_id=7001))

    assert response.status_code == 202, response.text
    assert response.json()["refused"][0]["index"] == 5
    wait_for(all_settled, timeout=40)
    workflow = Workflow.objects.get()
    assert workflow.status == Status.AWAITING_APPROVAL, workflow.last_error
    assert workflow.contact_id == "7001" and workflow.draft.recipient == "contact.7001@e2e.test"
    assert NonLeadDelivery.objects.filter(outcome="ignored").count() == 4
    assert NonLeadDelivery.objects.filter(outcome="refused").count() == 1
    calls = e2e.requests()
    assert calls, "the worker called the sandbox"
    for call in calls:
        text = call.path + json.dumps(call.query) + json.dumps(call.json)
        for other in ("7002", "88", "99"):
            assert f"/{other}" not in call.path and f'"{other}"' not in text, (call.path, other)
    assert [c.path.rsplit("/", 1)[-1] for c in e2e.requests("contacts.get")] == ["7001"]
    [task] = e2e.requests("tasks.create")
    assert task.json["associations"][0]["to"]["id"] == "7001"


def test_one_lead_delivered_three_ways_at_once_makes_one_draft_and_one_task(e2e, live_server):
    lead = Lead1(31, contact_id="5131")
    e2e.seed_contact(id=lead.contact_id, email=lead.email, firstname="Ada")
    barrier = threading.Barrier(3)
    answers: list[int] = []

    def over_http(body: bytes) -> None:
        barrier.wait()
        answers.append(post(live_server, body).status_code)

    def by_the_poll() -> None:
        try:
            item = parse_forms_api_submission(lead.poll_item(), portal_id=PORTAL, form_id=FORM)
            barrier.wait()
            submissions_ingest(
                items=[item],
                signature_version=SignatureVersion.POLL,
                received_at=timezone.now(),
                trigger=Trigger.RECONCILE,
            )
            answers.append(202)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=over_http, args=(lead.event(),)),
        threading.Thread(target=over_http, args=(lead.workflow_body(),)),
        threading.Thread(target=by_the_poll),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert answers == [202, 202, 202]
    wait_for(all_settled, timeout=40)
    assert FormSubmission.objects.count() == 3
    assert FormSubmission.objects.filter(lead__isnull=True).count() == 0
    working = Workflow.objects.exclude(last_error__startswith="duplicate of")
    [survivor] = working
    assert survivor.status == Status.AWAITING_APPROVAL, survivor.last_error
    assert EmailDraft.objects.count() == 1
    assert len(e2e.requests("tasks.create")) == 1 and len(e2e.state.tasks) == 1


def test_a_privacy_deletion_leaves_no_trace_in_the_database_or_the_worker_log(e2e, live_server):
    lead = Lead1(32, contact_id="5132")
    name = "Philomena"
    e2e.seed_contact(id=lead.contact_id, email=lead.email, firstname=name)
    body = json.loads(lead.workflow_body())
    body["properties"]["firstname"] = {"value": name}
    assert post(live_server, body).status_code == 202
    assert post(live_server, lead.forms_post()).status_code == 202
    wait_for(all_settled, timeout=40)
    assert EmailDraft.objects.get().recipient == lead.email
    log = REPO / "var" / "e2e-worker.log"
    offset = log.stat().st_size

    response = post(live_server, [event(40, "contact.privacyDeletion", objectId=5132)])
    assert post(live_server, body).json()["duplicates"] == 1  # redelivered: nothing new
    wait_for(lambda: not Workflow.objects.exclude(status__in=SETTLED).exists(), timeout=20)

    assert response.status_code == 202 and response.json()["applied"]
    database = dump()
    written_after = log.read_bytes()[offset:]
    for trace in (lead.email, lead.email.title(), name, f"A demo please ({lead.n})"):
        assert trace.encode() not in database, trace
        assert trace.encode() not in written_after, trace
    assert Workflow.objects.get().status == Status.REJECTED
