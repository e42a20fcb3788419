"""The workflow steps against the HubSpot sandbox over real HTTP, the task body run directly.

(The end-to-end tests in tests/e2e run the same thing through a real Celery worker.)
"""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from intake.models import FormSubmission
from workflows import pipeline
from workflows.models import AuditEvent, Status, Step, Workflow, WorkflowError
from workflows.sweeper import sweep


@pytest.fixture
def crm(hubspot_sandbox, settings):
    settings.WORKFLOW_RETRY_BASE_SECONDS = 1
    settings.CONTACT_SEARCH_LAG_BASE_SECONDS = 0.3
    settings.CONTACT_SEARCH_LAG_RETRIES = 3
    return hubspot_sandbox


def new_workflow(email: str = "lead@acme.test", key: str = "1", **fields) -> Workflow:
    submission = FormSubmission.objects.create(
        dedupe_key=f"test:{key}",
        shape=fields.pop("shape", "forms"),
        signature_version="v3",
        raw_payload={},
        email=email,
        first_name="Lea",
        last_name="Lead",
        company="Acme",
        form_id="contact-us",
        received_at=timezone.now(),
        **fields,
    )
    return Workflow.objects.create(submission=submission)


def run_until_done(workflow_id: int, max_runs: int = 12, wait: bool = False) -> list[float]:
    """Call the pipeline as Celery would on each retry; return the scheduled countdowns."""
    countdowns = []
    for _ in range(max_runs):
        try:
            pipeline.run_workflow(workflow_id, task_id="task-1")
            return countdowns
        except pipeline.RetryLater as retry:
            if retry.kind == "error":
                countdowns.append(retry.countdown)
            if wait:
                time.sleep(retry.countdown)
        except pipeline.StepFailed:
            return countdowns
    raise AssertionError("workflow did not settle")


@pytest.mark.django_db
def test_a_new_lead_reaches_awaiting_approval_with_contact_owner_task_and_draft(crm):
    crm.seed_contact(
        email="lead@acme.test", firstname="Lea", company="Acme", id="501", hubspot_owner_id="1001"
    )
    workflow = new_workflow()
    run_until_done(workflow.pk)
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL
    assert (workflow.contact_id, workflow.owner_id) == ("501", "1001")
    assert workflow.task_id and workflow.draft.recipient == "lead@acme.test"
    assert workflow.contact["owner"]["name"] == "Avery Owner"
    tasks = crm.requests("tasks.create")
    assert len(tasks) == 1
    body = tasks[0].json
    assert body["properties"]["hubspot_owner_id"] == "1001"
    assert body["associations"][0]["types"][0]["associationTypeId"] == 204
    assert f"/dashboard/workflows/{workflow.pk}/" in body["properties"]["hs_task_body"]
    for step in (Step.RESOLVE_CONTACT, Step.DRAFT_EMAIL, Step.CREATE_CRM_TASK, Step.HAND_OFF):
        assert workflow.step_log[step]["finished_at"] >= workflow.step_log[step]["started_at"]


@pytest.mark.django_db
def test_the_pipelines_writes_are_bound_on_the_server_and_prepared_once_repeated(crm, settings):
    """A workflow's writes have the same text every run, with their values bound by the server
    (config.db.bound_cursor), so psycopg prepares them after DB_PREPARE_THRESHOLD runs and
    PostgreSQL plans each once per connection. Quoted into the text on the client, as the
    ORM's cursor does, no two runs share a text and none is ever prepared."""
    if connection.vendor != "postgresql" or settings.DATABASE_POOLER:
        pytest.skip("server-side prepared statements are PostgreSQL's, without a pooler")
    threshold = connection.connection.prepare_threshold
    assert threshold is not None
    for n in range(threshold + 1):
        email = f"lead{n}@acme.test"
        crm.seed_contact(email=email, firstname="Lea", id=str(600 + n), hubspot_owner_id="1001")
        workflow = new_workflow(email=email, key=f"prepared-{n}")
        assert pipeline.run_workflow(workflow.pk, task_id=f"t{n}").status == "awaiting_approval"

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    step_writes = [s for s in prepared if s.startswith('UPDATE "workflows" SET "step_log"')]
    assert step_writes, prepared
    assert any('INSERT INTO "email_drafts"' in s for s in prepared), prepared
    assert any('"audit_events"' in s and s.startswith("WITH u AS") for s in prepared), prepared


@pytest.mark.django_db
def test_a_deactivated_owners_lead_keeps_the_owner_id_and_gets_an_unassigned_task(crm):
    # A deactivated user stays the contact's owner in HubSpot; their owner record is archived.
    crm.seed_owner(id="1003", email="gone@acme.test", firstName="Gale", archived=True)
    crm.seed_contact(email="lead@acme.test", firstname="Lea", id="502", hubspot_owner_id="1003")
    workflow = new_workflow()

    run_until_done(workflow.pk)

    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL
    assert (workflow.contact_id, workflow.owner_id) == ("502", "1003")
    assert workflow.contact["owner_archived"] is True
    assert "owner" not in workflow.contact  # the draft is not signed by Gale
    [task] = crm.requests("tasks.create")
    assert task.status == 201 and "hubspot_owner_id" not in task.json["properties"]
    assert [r.query for r in crm.requests("owners.get")] == [{}, {"archived": ["true"]}]


@pytest.mark.django_db
def test_a_known_leads_run_is_eight_statements_and_no_transaction(crm):
    """Each write is one statement (issue #16: under load, the worker's time per workflow is
    mostly round trips to PostgreSQL). The claim with its audit row and the read of the row,
    four step starts (each folding in the previous step's finish), the draft with its audit
    row, the hand-off with the gate's write and audit rows, the last finish: 8 (a lead's
    contact key makes 9; it was 19 before). No transaction: the
    test runs inside one, so an atomic block would show as a SAVEPOINT; the only one is the
    draft insert's, which guards a caller's transaction against a conflict."""
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement writes are PostgreSQL's")
    crm.seed_contact(email="lead@acme.test", firstname="Lea", id="501", hubspot_owner_id="1001")
    workflow = new_workflow()
    with CaptureQueriesContext(connection) as queries:
        outcome = pipeline.run_workflow(workflow.pk, task_id="task-1")

    assert outcome.status == Status.AWAITING_APPROVAL
    sql = [q["sql"] for q in queries.captured_queries]
    savepoints = [n for n, text in enumerate(sql) if text.startswith("SAVEPOINT")]
    assert len(savepoints) == 1 and 'INSERT INTO "email_drafts"' in sql[savepoints[0] + 1]
    statements = [text for text in sql if not text.startswith(("SAVEPOINT", "RELEASE"))]
    assert len(statements) <= 8, statements
    workflow.refresh_from_db()
    assert workflow.draft.gate_action == "block"
    assert workflow.step_log[Step.HAND_OFF]["finished_at"]
    actions = AuditEvent.objects.filter(workflow=workflow).values_list("action", flat=True)
    assert sorted(actions) == sorted(
        ["workflow.transition", "workflow.transition", "draft.created", "gate.decision"]
    )


@pytest.mark.django_db
def test_two_500s_then_success_completes_with_two_errors_and_three_attempts(crm):
    crm.add_fault("contacts.search", {"kind": "status", "status": 500, "times": 2})
    workflow = new_workflow()
    countdowns = run_until_done(workflow.pk)
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL
    errors = list(WorkflowError.objects.filter(workflow=workflow))
    assert [(e.step, e.attempt, e.retryable) for e in errors] == [
        (Step.RESOLVE_CONTACT, 1, True),
        (Step.RESOLVE_CONTACT, 2, True),
    ]
    assert workflow.step_log[Step.RESOLVE_CONTACT]["attempts"] == 3
    # exponential backoff with jitter: attempt 1 waits in [1, 2), attempt 2 in [2, 4)
    assert 1 <= countdowns[0] < 2 and 2 <= countdowns[1] < 4
    assert [e.retry_in_seconds for e in errors] == countdowns


@pytest.mark.django_db
def test_a_400_fails_after_one_attempt_with_hubspots_message(crm):
    crm.add_fault("contacts.search", {"kind": "status", "status": 400, "times": 1})
    workflow = new_workflow()
    assert run_until_done(workflow.pk) == []
    workflow.refresh_from_db()
    assert workflow.status == Status.FAILED
    error = WorkflowError.objects.get(workflow=workflow)
    assert (error.attempt, error.retryable, error.exception_type) == (
        1,
        False,
        "PermanentHubSpotError",
    )
    assert "resolve_contact failed" in workflow.last_error


@pytest.mark.django_db
def test_retries_exhausted_fail_the_workflow(crm):
    crm.add_fault("contacts.search", {"kind": "status", "status": 503, "times": 5})
    workflow = new_workflow()
    assert len(run_until_done(workflow.pk)) == 2
    workflow.refresh_from_db()
    assert workflow.status == Status.FAILED and "retries exhausted" in workflow.last_error
    assert WorkflowError.objects.filter(workflow=workflow).count() == 3


@pytest.mark.django_db
def test_a_failure_is_logged_with_why_and_hubspots_answer(crm, caplog):
    # The on-call engineer's line said only "TransientHubSpotError", and HubSpot's 5xx
    # answers were INFO lines among the successes (stop 23's walkthrough).
    crm.add_fault("contacts.search", {"kind": "status", "status": 503, "times": 5})
    workflow = new_workflow()
    with caplog.at_level("INFO"):
        run_until_done(workflow.pk)

    [failed] = [r for r in caplog.records if r.getMessage() == "Workflow failed"]
    assert (failed.levelname, failed.workflow_id, failed.why) == (
        "ERROR",
        workflow.pk,
        "retries exhausted after 3 attempts",
    )
    assert (failed.hubspot_status, failed.hubspot_category) == (503, "INTERNAL_ERROR")
    answers = [r for r in caplog.records if r.getMessage().startswith("hubspot POST")]
    assert {r.levelname for r in answers if "status=503" in r.getMessage()} == {"WARNING"}


@pytest.mark.django_db
def test_a_timeout_is_retried(crm, settings):
    crm.add_fault("owners.get", {"kind": "timeout", "seconds": 1.5, "times": 1})
    crm.seed_contact(email="lead@acme.test", id="777", hubspot_owner_id="1001")
    workflow = new_workflow()
    settings.HUBSPOT_TIMEOUT_SECONDS = 0.5
    countdowns = run_until_done(workflow.pk)
    workflow.refresh_from_db()
    assert len(countdowns) == 1 and workflow.status == Status.AWAITING_APPROVAL
    assert WorkflowError.objects.get(workflow=workflow).exception_type == "TransientHubSpotError"


@pytest.mark.django_db
def test_index_lag_finds_the_contact_on_a_later_search_and_creates_none(crm, settings):
    settings.CONTACT_ATTACH_IN_BACKGROUND = False  # the waiting path (auto-send uses it)
    crm.configure(index_lag_seconds=0.6)
    from workflows.hubspot.client import HubSpotClient

    HubSpotClient(base_url=crm.url, token=crm.token).create_contact({"email": "lag@acme.test"})
    workflow = new_workflow(email="lag@acme.test")
    run_until_done(workflow.pk, wait=True)  # the countdowns give the index time, as Celery would
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL
    assert len(crm.requests("contacts.create")) == 1  # only the one made above
    assert len(crm.requests("contacts.search")) >= 2


@pytest.mark.django_db
def test_an_unknown_lead_is_created_in_the_crm(crm, settings):
    settings.CONTACT_ATTACH_IN_BACKGROUND = False  # the waiting path (auto-send uses it)
    workflow = new_workflow(email="fresh@acme.test")
    run_until_done(workflow.pk)
    workflow.refresh_from_db()
    created = crm.requests("contacts.create")
    assert len(created) == 1 and created[0].json["properties"]["email"] == "fresh@acme.test"
    assert workflow.contact_id


@pytest.mark.django_db
def test_a_retried_task_create_after_a_timeout_does_not_create_a_second_task(crm, settings):
    crm.seed_contact(email="lead@acme.test", id="42")
    # The task is created, but the answer is lost: the client times out.
    crm.add_fault("tasks.create", {"kind": "timeout", "seconds": 1.5, "times": 1})
    settings.HUBSPOT_TIMEOUT_SECONDS = 0.5
    workflow = new_workflow()
    assert len(run_until_done(workflow.pk, wait=True)) == 1
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL
    assert len(crm.requests("tasks.create")) == 1  # the retry found it instead of creating
    assert len(crm.requests("tasks.search")) >= 1
    assert list(crm.state.tasks) == [workflow.task_id]


@pytest.mark.django_db
def test_without_a_token_crm_steps_are_skipped_with_a_reason_and_the_draft_is_made(settings):
    settings.HUBSPOT_ACCESS_TOKEN = ""
    workflow = new_workflow()
    run_until_done(workflow.pk)
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL
    assert "HUBSPOT_ACCESS_TOKEN is not set" in workflow.step_log[Step.RESOLVE_CONTACT]["note"]
    assert "HUBSPOT_ACCESS_TOKEN is not set" in workflow.step_log[Step.CREATE_CRM_TASK]["note"]
    assert workflow.draft.recipient == "lead@acme.test"


@pytest.mark.django_db
def test_an_invalid_email_fails_the_workflow_with_the_reason(settings):
    settings.HUBSPOT_ACCESS_TOKEN = ""
    workflow = new_workflow(email="", email_error="invalid email 'not-an-email'")
    run_until_done(workflow.pk)
    workflow.refresh_from_db()
    assert workflow.status == Status.FAILED
    assert "invalid email 'not-an-email'" in workflow.last_error


@pytest.mark.django_db
def test_a_workflow_claimed_by_a_live_task_is_not_taken_by_another(crm):
    workflow = new_workflow()
    assert pipeline.claim(workflow.pk, "task-a") is not None
    assert pipeline.claim(workflow.pk, "task-b") is None
    assert pipeline.claim(workflow.pk, "task-a") is not None  # a Celery retry keeps its id


@pytest.mark.django_db
def test_sweeper_requeues_lost_enqueues_and_expired_leases(settings):
    settings.SWEEPER_PENDING_AFTER_SECONDS = 60
    old = timezone.now() - timezone.timedelta(minutes=5)
    lost = new_workflow(key="lost")
    fresh = new_workflow(key="fresh")
    dead = new_workflow(key="dead")
    Workflow.objects.filter(pk=lost.pk).update(created_at=old)
    Workflow.objects.filter(pk=dead.pk).update(
        status=Status.RUNNING, claimed_by="dead-task", lease_expires_at=old
    )
    result = sweep()
    assert (result.pending, result.expired_leases) == (1, 1)
    dead.refresh_from_db()
    assert dead.claimed_by == "" and dead.lease_expires_at > timezone.now()
    assert pipeline.claim(dead.pk, "new-task") is not None
    assert sweep().as_dict()["pending"] == 0  # stamped: the next sweep leaves them alone
    fresh.refresh_from_db()
    assert fresh.enqueued_at is None


@pytest.mark.django_db
def test_an_event_delivery_is_drafted_to_the_crm_contacts_email(crm):
    crm.seed_contact(email="evented@acme.test", firstname="Eve", id="5101")
    workflow = new_workflow(email="", shape="event", object_id="5101")
    run_until_done(workflow.pk)
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL
    assert workflow.contact["lifecyclestage"] == "" and workflow.contact["firstname"] == "Eve"
    assert workflow.draft.recipient == "evented@acme.test"
    assert workflow.draft.gate_reason and "no valid recipient" not in workflow.draft.gate_reason
    [get] = crm.requests("contacts.get")
    assert "lifecyclestage" in get.query["properties"]  # each property its own parameter


@pytest.mark.django_db
def test_a_resolved_contact_fills_only_the_lead_columns_the_delivery_left_blank(crm):
    """The dashboard shows and searches the submission's columns: an event's blank email and
    company come from the contact; a name the delivery carried stays; the payload as it came."""
    crm.seed_contact(
        email="Evented@Acme.test", firstname="Eve", lastname="Ent", company="Acme EU", id="5102"
    )
    workflow = new_workflow(email="", shape="event", object_id="5102", key="fill")
    FormSubmission.objects.filter(pk=workflow.submission_id).update(company="", last_name="")
    run_until_done(workflow.pk)
    submission = FormSubmission.objects.get(pk=workflow.submission_id)
    assert (submission.email, submission.first_name, submission.last_name, submission.company) == (
        "evented@acme.test",  # lowercased as intake stores it
        "Lea",  # carried by the delivery: never replaced
        "Ent",
        "Acme EU",
    )
    assert submission.raw_payload == {}


@pytest.mark.django_db
def test_an_erased_submission_is_not_filled_again(crm):
    crm.seed_contact(email="gone@acme.test", id="5103")
    workflow = new_workflow(email="", shape="event", object_id="5103", key="erased")
    FormSubmission.objects.filter(pk=workflow.submission_id).update(erased_at=timezone.now())
    run_until_done(workflow.pk)
    assert FormSubmission.objects.get(pk=workflow.submission_id).email == ""


@pytest.mark.django_db
def test_a_search_miss_is_asked_again_by_countdown_not_counted_as_an_error(crm, settings):
    settings.CONTACT_ATTACH_IN_BACKGROUND = False  # the waiting path (auto-send uses it)
    workflow = new_workflow(email="new@acme.test")
    with pytest.raises(pipeline.RetryLater) as first:
        pipeline.run_workflow(workflow.pk, task_id="task-1")
    assert (first.value.kind, first.value.countdown) == ("index_lag", 0.3)
    with pytest.raises(pipeline.RetryLater) as second:
        pipeline.run_workflow(workflow.pk, task_id="task-1")
    assert second.value.countdown == 0.6  # backoff
    workflow.refresh_from_db()
    entry = workflow.step_log[Step.RESOLVE_CONTACT]
    assert (entry["search_misses"], entry["attempts"], workflow.attempts) == (2, 0, 0)
    assert not WorkflowError.objects.filter(workflow=workflow).exists()
    assert workflow.status == Status.RUNNING and crm.requests("contacts.create") == []


@pytest.mark.django_db
def test_the_sweeper_backs_off_a_pending_row_by_its_age(settings):
    """Under a backlog the sweeper used to publish every pending row again each period; now
    a row waits at least half its age between publishes (and never less than the period)."""
    settings.SWEEPER_PENDING_AFTER_SECONDS = 60
    now = timezone.now()
    ago = lambda **kw: now - timezone.timedelta(**kw)  # noqa: E731
    rows = {  # name: (created, last published)
        "never published": (ago(minutes=10), None),
        "published at creation": (ago(minutes=10), ago(minutes=10)),
        "published 4 min ago, 10 min old": (ago(minutes=10), ago(minutes=4)),
        "published 6 min ago, 10 min old": (ago(minutes=10), ago(minutes=6)),
        "published 50 s ago, 2 min old": (ago(minutes=2), ago(seconds=50)),
        "published 70 s ago, 2 min old": (ago(minutes=2), ago(seconds=70)),
        "published 61 min ago, 2 h old": (ago(hours=2), ago(minutes=61)),
        "published 59 min ago, 2 h old": (ago(hours=2), ago(minutes=59)),
    }
    ids = {}
    for name, (created, published) in rows.items():
        workflow = new_workflow(key=name)
        Workflow.objects.filter(pk=workflow.pk).update(created_at=created, enqueued_at=published)
        ids[workflow.pk] = name

    result = sweep(now=now)

    stamped = Workflow.objects.filter(enqueued_at=now).values_list("pk", flat=True)
    swept = {ids[pk] for pk in stamped}
    assert swept == {
        "never published",
        "published at creation",
        "published 6 min ago, 10 min old",
        "published 70 s ago, 2 min old",
        "published 61 min ago, 2 h old",
    }
    assert result.pending == len(swept)
