"""One lead, one workflow, whichever way it came (intake/identity.py).

The same form fill delivered as a Webhooks API event, as a workflow "Send a webhook" body,
as a Forms-style post and by the Forms API poll is stored four times, linked to one lead,
and makes one draft and one CRM task. The database decides, also under concurrency.

"reconcile" is the Forms poll as it runs (workflows/hubspot/reconcile.py against the sandbox
over HTTP: it looks the contact up by email, so the polled submission claims the contact's
key); "poll" stores a polled submission directly, as the poll does when that search misses.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from intake.identity import FORM_WINDOW_SECONDS, contact_key, lead_keys
from intake.models import FormSubmission, Lead, LeadKey, SignatureVersion
from intake.payloads import parse_delivery, parse_forms_api_submission
from intake.services import submissions_ingest
from outreach.models import EmailDraft
from workflows import pipeline
from workflows.hubspot.client import HubSpotClient
from workflows.hubspot.reconcile import forms_reconcile
from workflows.hubspot.throttle import TokenBucket
from workflows.models import Status, Step, Trigger, Workflow

PORTAL = 62515
FORM = "4f2b7c1e-9a3d-4b8e-8f6a-2c1d0e9b7a55"
SUBMITTED_MS = 1764235200000


class Lead1:
    """One person's one form fill, as each delivery path carries it."""

    def __init__(self, n: int, contact_id: str = "") -> None:
        self.n = n
        self.contact_id = contact_id or str(900_000 + n)
        self.email = f"ada.{n}@example.com"
        self.conversion = f"conv-{n}-0f7c4a6e"
        self.submitted_ms = SUBMITTED_MS + n * 3_600_000

    def event(self) -> bytes:
        return _json(
            [
                {
                    "eventId": 1000 + self.n,
                    "portalId": PORTAL,
                    "occurredAt": self.submitted_ms + 900,
                    "subscriptionType": "contact.creation",
                    "attemptNumber": 0,
                    "objectId": int(self.contact_id),
                }
            ]
        )

    def workflow_body(self) -> bytes:
        return _json(
            {
                "vid": int(self.contact_id),
                "portal-id": PORTAL,
                "properties": {
                    "email": {"value": self.email.title()},
                    "firstname": {"value": "Ada"},
                    "message": {"value": f"A demo please ({self.n})"},
                },
                "form-submissions": [
                    {
                        "conversion-id": self.conversion,
                        "timestamp": self.submitted_ms,
                        "form-id": FORM,
                        "portal-id": PORTAL,
                    }
                ],
            }
        )

    def forms_post(self) -> bytes:
        return _json(
            {
                "portalId": PORTAL,
                "formId": FORM,
                "submittedAt": self.submitted_ms,
                "fields": [
                    {"name": "email", "value": self.email},
                    {"name": "firstname", "value": "Ada"},
                    {"name": "message", "value": f"A demo please ({self.n})"},
                ],
            }
        )

    def in_hubspot(self, crm) -> None:
        """The contact and its form submission, as HubSpot holds them after the form fill."""
        crm.seed_contact(id=self.contact_id, email=self.email, firstname="Ada")
        crm.seed_submissions(FORM, [self.poll_item()])

    def poll_item(self) -> dict:
        return {
            "conversionId": self.conversion,
            "submittedAt": self.submitted_ms,
            "values": [
                {"name": "email", "value": self.email},
                {"name": "firstname", "value": "Ada"},
                {"name": "message", "value": f"A demo please ({self.n})"},
            ],
            "pageUrl": "https://www.example.com/demo",
        }


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


def deliver(lead: Lead1, path: str) -> None:
    """Store one delivery as the webhook view (v3) or the Forms poll would."""
    if path == "reconcile":
        # The Forms poll over HTTP; the submission is in the sandbox (lead.in_hubspot).
        since = datetime.fromtimestamp(lead.submitted_ms / 1000, UTC)
        forms_reconcile(form_ids=[FORM], since=since)
        return
    if path == "poll":
        item = parse_forms_api_submission(lead.poll_item(), portal_id=PORTAL, form_id=FORM)
        submissions_ingest(
            items=[item],
            signature_version=SignatureVersion.POLL,
            received_at=timezone.now(),
            trigger=Trigger.RECONCILE,
        )
        return
    delivery = parse_delivery(getattr(lead, path)())
    submissions_ingest(
        items=delivery.items,
        refused=delivery.refused,
        signature_version="v3",
        received_at=timezone.now(),
    )


PATHS = ("event", "workflow_body", "forms_post", "poll")


@pytest.fixture
def crm(hubspot_sandbox, settings):
    settings.CONTACT_SEARCH_LAG_RETRIES = 0
    return hubspot_sandbox


def run_pending() -> None:
    """Run every workflow as the worker would (unit level: the task body, called directly)."""
    for _ in range(5):
        pending = list(Workflow.objects.filter(status=Status.PENDING).values_list("pk", flat=True))
        if not pending:
            return
        for workflow_id in pending:
            with contextlib.suppress(pipeline.StepFailed):
                pipeline.run_workflow(workflow_id, task_id=f"t-{workflow_id}")


def assert_one_lead_one_draft_one_task(lead: Lead1, crm, deliveries: int) -> None:
    submissions = FormSubmission.objects.filter(
        pk__in=FormSubmission.objects.filter(email=lead.email).values("pk")
    ) | FormSubmission.objects.filter(object_id=lead.contact_id)
    assert submissions.count() == deliveries
    assert all(s.lead_id for s in submissions), "every delivery is linked to a lead"
    workflows = Workflow.objects.filter(submission__in=submissions)
    working = workflows.exclude(status=Status.COMPLETED, last_error__startswith="duplicate of")
    [survivor] = working
    assert survivor.status == Status.AWAITING_APPROVAL, survivor.last_error
    assert EmailDraft.objects.filter(workflow__in=workflows).count() == 1
    tasks = [t for t in crm.state.tasks.values() if lead.contact_id in json.dumps(t.object)]
    assert len(crm.requests("tasks.create")) == len(tasks) == 1
    for duplicate in workflows.exclude(pk=survivor.pk):
        assert duplicate.status == Status.COMPLETED
        assert f"workflow #{survivor.pk}" in duplicate.last_error
    leads = {s.lead_id for s in submissions}
    ends = {Lead.objects.get(pk=lead_id).duplicate_of_id or lead_id for lead_id in leads}
    assert ends == {survivor.submission.lead_id}


def submissions_of(lead: Lead1):
    return FormSubmission.objects.filter(email=lead.email) | FormSubmission.objects.filter(
        object_id=lead.contact_id
    )


def assert_one_workflow_row(lead: Lead1, deliveries: int) -> Workflow:
    """Every delivery stored and linked to one lead, and that lead's one workflow row."""
    stored = submissions_of(lead)
    assert stored.count() == deliveries
    assert len({s.lead_id for s in stored}) == 1, "one lead"
    [workflow] = Workflow.objects.filter(submission__in=stored)
    assert workflow.submission.lead_id == workflow.submission_id
    return workflow


@pytest.mark.django_db
@pytest.mark.parametrize("order", [("event", "reconcile"), ("reconcile", "event")])
def test_an_event_and_the_forms_poll_in_either_order_make_one_workflow(crm, order):
    lead = Lead1(8, contact_id="5108")
    lead.in_hubspot(crm)

    for path in order:
        deliver(lead, path)

    workflow = assert_one_workflow_row(lead, deliveries=2)
    assert LeadKey.objects.get(key=contact_key(lead.contact_id)).lead_id == workflow.submission_id
    assert len(crm.requests("contacts.search")) == 1, "the poll looked the contact up once"
    run_pending()
    assert_one_lead_one_draft_one_task(lead, crm, deliveries=2)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "order", list(itertools.permutations(("event", "workflow_body", "reconcile")))
)
def test_event_workflow_body_and_poll_in_any_order_make_one_workflow_draft_and_task(crm, order):
    lead = Lead1(1, contact_id="5101")
    lead.in_hubspot(crm)

    for path in order:
        deliver(lead, path)
    run_pending()

    workflow = assert_one_workflow_row(lead, deliveries=3)
    assert workflow.status == Status.AWAITING_APPROVAL, workflow.last_error
    assert_one_lead_one_draft_one_task(lead, crm, deliveries=3)


@pytest.mark.django_db
@pytest.mark.parametrize("first", ["workflow_body", "forms_post", "reconcile"])
def test_a_polled_submission_of_a_lead_that_knows_its_contact_costs_no_search(crm, first):
    lead = Lead1(9, contact_id="5109")
    lead.in_hubspot(crm)
    deliver(lead, first)  # its lead holds the conversion or form keys (or has stored it)
    run_pending()  # a Forms post's lead learns its contact at the resolve step
    searches = len(crm.requests("contacts.search"))

    result = forms_reconcile(form_ids=[FORM], since=datetime(2000, 1, 1, tzinfo=UTC))

    assert len(crm.requests("contacts.search")) == searches, "no search for a known lead"
    assert (result.total("found"), result.total("known"), result.total("ingested")) == (1, 1, 0)
    assert Workflow.objects.count() == 1
    assert len({s.lead_id for s in submissions_of(lead)}) == 1


@pytest.mark.django_db
def test_the_poll_brings_the_contact_to_a_forms_posts_lead_so_a_later_event_joins_it(crm):
    lead = Lead1(15, contact_id="5115")
    lead.in_hubspot(crm)

    for path in ("forms_post", "reconcile", "event"):
        deliver(lead, path)

    assert len(crm.requests("contacts.search")) == 1, "its lead had no contact key yet"
    workflow = assert_one_workflow_row(lead, deliveries=3)
    assert LeadKey.objects.get(key=contact_key(lead.contact_id)).lead_id == workflow.submission_id
    run_pending()
    assert_one_lead_one_draft_one_task(lead, crm, deliveries=3)


@pytest.mark.django_db
def test_a_forms_post_and_an_event_before_the_poll_end_as_a_recorded_duplicate(crm):
    """The one remaining case (docs/hubspot-app.md): no key in common at the door."""
    lead = Lead1(16, contact_id="5116")
    lead.in_hubspot(crm)

    for path in ("forms_post", "event", "reconcile"):
        deliver(lead, path)
    assert Workflow.objects.count() == 2
    run_pending()

    assert_one_lead_one_draft_one_task(lead, crm, deliveries=3)
    [duplicate] = Workflow.objects.filter(last_error__startswith="duplicate of")
    assert duplicate.status == Status.COMPLETED and Step.DRAFT_EMAIL not in duplicate.step_log


@pytest.mark.django_db
def test_a_search_miss_stores_the_polled_submission_without_the_contact_key(crm):
    lead = Lead1(10, contact_id="5110")
    crm.seed_submissions(FORM, [lead.poll_item()])  # HubSpot has no such contact (yet)

    [outcome] = forms_reconcile(form_ids=[FORM], since=datetime(2000, 1, 1, tzinfo=UTC)).forms

    assert (outcome.ingested, outcome.contact_found, outcome.contact_missed) == (1, 0, 1)
    [stored] = FormSubmission.objects.filter(email=lead.email)
    assert stored.lead_id == stored.pk
    assert not LeadKey.objects.filter(key__startswith="contact:").exists()


@pytest.mark.django_db
def test_a_failed_search_loses_no_submission_and_is_counted_and_logged(crm, caplog):
    leads = [Lead1(11, contact_id="5111"), Lead1(12, contact_id="5112")]
    for lead in leads:
        lead.in_hubspot(crm)
    crm.add_fault("contacts.search", {"kind": "status", "status": 500, "times": 1})

    [outcome] = forms_reconcile(form_ids=[FORM], since=datetime(2000, 1, 1, tzinfo=UTC)).forms

    assert (outcome.ingested, outcome.search_failed, outcome.contact_found) == (2, 1, 1)
    assert FormSubmission.objects.filter(email__in=[x.email for x in leads]).count() == 2
    assert LeadKey.objects.filter(key__startswith="contact:").count() == 1
    [record] = [r for r in caplog.records if "could not look a contact up" in r.getMessage()]
    assert record.status == 500 and record.form_id == FORM
    assert all(x.email not in r.getMessage() for r in caplog.records for x in leads)


@pytest.mark.django_db
def test_the_daily_limit_stops_the_searches_and_stores_every_submission(crm):
    leads = [Lead1(13, contact_id="5113"), Lead1(14, contact_id="5114")]
    for lead in leads:
        lead.in_hubspot(crm)
    crm.add_fault("contacts.search", {"kind": "status", "status": 429, "policy": "DAILY"})
    throttle = TokenBucket(None)  # this test's own: the halt must not outlive it
    client = HubSpotClient(
        base_url=crm.url, token=crm.token, throttle=throttle, daily_pause=lambda: 60.0
    )

    result = forms_reconcile(form_ids=[FORM], since=datetime(2000, 1, 1, tzinfo=UTC), client=client)

    assert len(crm.requests("contacts.search")) == 1, "no search during the halt"
    assert throttle.halted_for() > 0
    assert (result.total("ingested"), result.forms[0].search_failed) == (2, 2)
    assert FormSubmission.objects.filter(email__in=[x.email for x in leads]).count() == 2


@pytest.mark.django_db
def test_deliveries_after_the_lead_is_worked_join_it_and_start_nothing(crm):
    lead = Lead1(2, contact_id="5102")
    crm.seed_contact(id=lead.contact_id, email=lead.email, firstname="Ada")
    deliver(lead, "poll")
    run_pending()

    for path in ("event", "forms_post", "workflow_body"):
        deliver(lead, path)

    assert Workflow.objects.count() == 1
    assert FormSubmission.objects.filter(lead__isnull=False).count() == 4
    assert_one_lead_one_draft_one_task(lead, crm, deliveries=4)


def test_form_keys_of_two_times_under_half_a_window_apart_always_meet():
    def keys(seconds: float) -> set[str]:
        [item] = parse_delivery(
            _json(
                {
                    "formId": FORM,
                    "submittedAt": int(seconds * 1000),
                    "fields": [{"name": "email", "value": "a@example.com"}],
                }
            )
        ).items
        return set(lead_keys(item))

    edge = 1764235200 // FORM_WINDOW_SECONDS * FORM_WINDOW_SECONDS  # a bucket boundary
    for before, after in [(edge - 1, edge + 1), (edge - 299, edge), (edge + 10, edge + 309)]:
        assert keys(before) & keys(after), (before, after)
    assert not keys(edge - 2 * FORM_WINDOW_SECONDS) & keys(edge)
    assert all("a@example.com" not in key for key in keys(edge)), "no email in a key"


def test_keys_name_the_contact_the_conversion_and_the_form_fill():
    lead = Lead1(3, contact_id="77")
    [item] = parse_delivery(lead.workflow_body()).items
    keys = lead_keys(item)
    assert keys[0] == "contact:77"
    assert keys[1].startswith("conversion:") and keys[2].startswith("form:")
    when = datetime.fromtimestamp(lead.submitted_ms / 1000, UTC)
    assert item.submitted_at == when


def test_a_polled_submission_names_its_contact_only_when_the_poll_found_it():
    lead = Lead1(4, contact_id="78")
    found, missed = (
        parse_forms_api_submission(lead.poll_item(), portal_id=PORTAL, form_id=FORM, contact_id=c)
        for c in ("78", "")
    )
    assert lead_keys(found) == [contact_key("78"), *lead_keys(missed)]
    assert not any(k.startswith("contact:") for k in lead_keys(missed))
    assert found.dedupe_key == missed.dedupe_key, "the contact changes no dedupe key"


def run_together(calls: list[Callable[[], None]]) -> list[BaseException]:
    """Start the calls at the same moment, each on its own thread and database connection."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        try:
            barrier.wait()
            call()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


@pytest.mark.django_db(transaction=True)
def test_a_forms_post_and_the_poll_racing_start_exactly_one_workflow():
    if connection.vendor != "postgresql":
        pytest.skip("the race is PostgreSQL's")
    rounds = [Lead1(100 + n) for n in range(25)]

    for lead in rounds:
        errors = run_together(
            [lambda lead=lead, path=path: deliver(lead, path) for path in ("forms_post", "poll")]
        )
        assert not errors, errors

    for lead in rounds:
        stored = FormSubmission.objects.filter(email=lead.email)
        assert stored.count() == 2
        assert len({s.lead_id for s in stored}) == 1
        assert Workflow.objects.filter(submission__in=stored).count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_event_a_workflow_body_and_the_poll_racing_make_one_workflow(crm):
    if connection.vendor != "postgresql":
        pytest.skip("the race is PostgreSQL's")
    rounds = [Lead1(300 + n) for n in range(8)]
    for lead in rounds:
        lead.in_hubspot(crm)

    for lead in rounds:  # in submission order: each poll reads back to its own lead only
        paths = ("event", "workflow_body", "reconcile")
        errors = run_together([lambda lead=lead, path=path: deliver(lead, path) for path in paths])
        assert not errors, errors
    pending = list(Workflow.objects.filter(status=Status.PENDING).values_list("pk", flat=True))
    errors = run_together(
        [lambda wid=wid: pipeline.run_workflow(wid, task_id=f"t-{wid}") for wid in pending]
    )
    assert not errors, errors

    assert Workflow.objects.count() == len(rounds)
    assert len(crm.requests("tasks.create")) == len(crm.state.tasks) == len(rounds)
    for lead in rounds:
        workflow = assert_one_workflow_row(lead, deliveries=3)
        assert workflow.status == Status.AWAITING_APPROVAL, workflow.last_error
        assert EmailDraft.objects.filter(workflow=workflow).count() == 1


@pytest.mark.django_db(transaction=True)
def test_all_four_paths_racing_make_one_draft_and_one_task(crm):
    if connection.vendor != "postgresql":
        pytest.skip("the race is PostgreSQL's")
    rounds = [Lead1(200 + n) for n in range(6)]
    for lead in rounds:
        crm.seed_contact(id=lead.contact_id, email=lead.email, firstname="Ada")

    for lead in rounds:
        errors = run_together([lambda lead=lead, path=path: deliver(lead, path) for path in PATHS])
        assert not errors, errors
    # The workflows of all leads race too: each on its own thread, like worker processes.
    pending = list(Workflow.objects.filter(status=Status.PENDING).values_list("pk", flat=True))
    errors = run_together(
        [lambda wid=wid: pipeline.run_workflow(wid, task_id=f"t-{wid}") for wid in pending]
    )
    assert not errors, errors

    assert len(crm.requests("tasks.create")) == len(crm.state.tasks) == len(rounds)
    for lead in rounds:
        lead_subs = FormSubmission.objects.filter(email=lead.email) | FormSubmission.objects.filter(
            object_id=lead.contact_id
        )
        workflows = Workflow.objects.filter(submission__in=lead_subs)
        assert workflows.filter(status=Status.AWAITING_APPROVAL).count() == 1
        assert EmailDraft.objects.filter(workflow__in=workflows).count() == 1
        assert all(s.lead_id for s in lead_subs) and lead_subs.count() == 4


@pytest.mark.django_db
def test_the_same_contact_enquiring_again_after_the_window_is_a_new_lead(settings):
    settings.LEAD_CONTACT_WINDOW_HOURS = 72
    first, again = Lead1(5, contact_id="5105"), Lead1(6, contact_id="5105")
    deliver(first, "event")
    deliver(again, "workflow_body")  # the same contact, within the window: the same lead
    assert Workflow.objects.count() == 1

    LeadKey.objects.filter(key="contact:5105").update(
        created_at=timezone.now() - timedelta(hours=73)
    )
    later = Lead1(7, contact_id="5105")
    deliver(later, "workflow_body")

    assert Workflow.objects.count() == 2
    newest = FormSubmission.objects.order_by("-pk").first()
    assert LeadKey.objects.get(key="contact:5105").lead_id == newest.lead_id == newest.pk
