"""New leads in under a second (issue #16): a lead HubSpot's search does not know yet is
drafted from the form at once, and its contact is attached in the background.

Against the HubSpot sandbox over real HTTP; the task bodies are called directly (the e2e
suite runs them through a real worker). Behaviour, not timing: bench/pipeline.py times it.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from intake.tests.test_identity import Lead1, deliver, run_pending
from outreach import services as outreach
from outreach.models import EmailDraft
from workflows import pipeline
from workflows.hubspot.client import HubSpotClient
from workflows.models import AuditEvent, Status, Step, Workflow, WorkflowError
from workflows.sweeper import sweep
from workflows.tests.test_pipeline import new_workflow as pipeline_workflow


@pytest.fixture
def crm(hubspot_sandbox, settings):
    settings.CONTACT_SEARCH_LAG_BASE_SECONDS = 0.3
    settings.CONTACT_SEARCH_LAG_RETRIES = 3
    settings.CONTACT_ATTACH_IN_BACKGROUND = True
    return hubspot_sandbox


def new_workflow(email: str = "new@acme.test") -> Workflow:
    return pipeline_workflow(email, key=email)


def attach(workflow_id: int, *, misses: int = 0, attempt: int = 0) -> list[float]:
    """Call the attach task body as the worker would, until it stops asking for another try;
    returns the countdowns it asked for."""
    countdowns, token = [], ""
    for _ in range(10):
        try:
            pipeline.contact_attach(workflow_id, misses=misses, attempt=attempt, token=token)
            return countdowns
        except pipeline.AttachAgain as again:
            countdowns.append(again.countdown)
            misses, attempt, token = again.misses, again.attempt, again.token
    raise AssertionError("attach did not settle")


def hubspot_creates(crm, **properties) -> str:
    """HubSpot's own form processing creates the contact (not Leadline)."""
    client = HubSpotClient(base_url=crm.url, token=crm.token)
    try:
        return str(client.create_contact(properties)["id"])
    finally:
        client.close()


@pytest.mark.django_db
def test_a_new_lead_is_drafted_at_once_and_approval_waits_for_its_contact(crm, operator):
    workflow = new_workflow()
    pipeline.run_workflow(workflow.pk, task_id="task-1")  # no countdown, no retry

    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL
    assert workflow.contact_id == "" and workflow.task_id == ""
    assert workflow.step_log[Step.RESOLVE_CONTACT]["contact_pending"] is True
    assert len(crm.requests("contacts.search")) == 1
    assert crm.requests("contacts.create") == [] and crm.requests("tasks.create") == []
    draft = EmailDraft.objects.get(workflow=workflow)
    assert draft.recipient == "new@acme.test" and "Hi Lea," in draft.body
    with pytest.raises(outreach.ActionRefused, match="still being looked up"):
        outreach.workflow_approve(workflow_id=workflow.pk, user=operator, version=draft.version)
    assert Workflow.objects.get(pk=workflow.pk).status == Status.AWAITING_APPROVAL


@pytest.mark.django_db
def test_the_contact_hubspot_creates_is_attached_and_the_draft_gets_its_owner(crm, operator):
    crm.seed_owner(id="77", email="rep@acme.test", firstName="Rita", lastName="Rep")
    workflow = new_workflow()
    pipeline.run_workflow(workflow.pk, task_id="task-1")
    before = EmailDraft.objects.get(workflow=workflow)
    assert "The team" in before.body

    contact_id = hubspot_creates(crm, email="new@acme.test", hubspot_owner_id="77")
    assert attach(workflow.pk) == []

    workflow.refresh_from_db()
    assert workflow.contact_id == contact_id and workflow.owner_id == "77"
    assert workflow.task_id and len(crm.requests("tasks.create")) == 1
    assert len(crm.requests("contacts.create")) == 1  # HubSpot's, none of Leadline's
    assert "contact_pending" not in workflow.step_log[Step.RESOLVE_CONTACT]
    assert workflow.last_error == ""
    draft = EmailDraft.objects.get(workflow=workflow)
    assert "Rita Rep" in draft.body and draft.version == before.version + 1
    assert AuditEvent.objects.filter(workflow=workflow, action="draft.refreshed").exists()
    # The rep's task carries the refreshed draft, not the one drafted from the form.
    task_body = crm.requests("tasks.create")[0].json["properties"]["hs_task_body"]
    assert "Rita Rep" in task_body and "The team" not in task_body
    # The operator's page still showed the old text: refused as stale; the new one is approved.
    with pytest.raises(outreach.StaleDraft):
        outreach.workflow_approve(workflow_id=workflow.pk, user=operator, version=before.version)
    result = outreach.workflow_approve(
        workflow_id=workflow.pk, user=operator, version=draft.version
    )
    assert result.ok


@pytest.mark.django_db
def test_the_attached_contact_fills_the_lead_columns_the_form_left_blank(crm):
    from intake.models import FormSubmission

    workflow = new_workflow("blank@acme.test")
    FormSubmission.objects.filter(pk=workflow.submission_id).update(
        first_name="", last_name="", company=""
    )  # a form that asked only for the email
    named = new_workflow("named@acme.test")  # a form that named its lead, but no company
    FormSubmission.objects.filter(pk=named.submission_id).update(company="")
    for run in (workflow, named):
        pipeline.run_workflow(run.pk, task_id=f"task-{run.pk}")
    hubspot_creates(
        crm, email="blank@acme.test", firstname="Other", lastname="Lead", company="Acme Corp"
    )
    hubspot_creates(crm, email="named@acme.test", firstname="Lea", company="Named Corp")
    assert attach(workflow.pk) == [] and attach(named.pk) == []

    submission = FormSubmission.objects.get(pk=workflow.submission_id)
    assert (submission.first_name, submission.last_name, submission.company) == (
        "Other",
        "Lead",
        "Acme Corp",
    )
    # A lead its delivery named is found by that: no statement spent on a blank company.
    assert FormSubmission.objects.get(pk=named.submission_id).company == ""


@pytest.mark.django_db
def test_a_contact_that_never_appears_is_created_after_the_last_search(crm):
    workflow = new_workflow(email="fresh@acme.test")
    pipeline.run_workflow(workflow.pk, task_id="task-1")

    assert attach(workflow.pk) == [0.6, 1.2]  # searched again after 0.3, 0.6 and 1.2 s

    workflow.refresh_from_db()
    created = crm.requests("contacts.create")
    assert len(created) == 1 and created[0].json["properties"]["email"] == "fresh@acme.test"
    assert len(crm.requests("contacts.search")) == 1 + 3
    assert workflow.contact_id and workflow.task_id
    assert workflow.status == Status.AWAITING_APPROVAL


@pytest.mark.django_db
def test_a_form_lead_whose_contact_another_lead_holds_ends_as_its_duplicate(crm):
    lead = Lead1(40, contact_id="5140")
    deliver(lead, "forms_post")
    run_pending()  # not in HubSpot yet: drafted from the form
    [form_run] = Workflow.objects.all()
    assert form_run.status == Status.AWAITING_APPROVAL

    crm.seed_contact(id=lead.contact_id, email=lead.email, firstname="Ada")
    deliver(lead, "event")  # the contact.creation event names the contact: a lead of its own
    run_pending()
    event_run = Workflow.objects.exclude(pk=form_run.pk).get()
    assert event_run.status == Status.AWAITING_APPROVAL and event_run.contact_id == "5140"

    attach(form_run.pk)

    form_run.refresh_from_db()
    assert form_run.status == Status.COMPLETED
    assert form_run.last_error.startswith(f"duplicate of workflow #{event_run.pk} (lead ")
    assert len(crm.requests("tasks.create")) == 1  # the event's run only
    assert crm.requests("contacts.create") == []


@pytest.mark.django_db
def test_a_failing_attach_is_recorded_and_never_blocks_approval_for_good(crm, settings):
    settings.WORKFLOW_MAX_ATTEMPTS = 2
    settings.WORKFLOW_RETRY_BASE_SECONDS = 1
    workflow = new_workflow()
    pipeline.run_workflow(workflow.pk, task_id="task-1")
    crm.add_fault("contacts.search", {"kind": "status", "status": 503, "times": 5})

    countdowns = attach(workflow.pk)

    assert len(countdowns) == 1 and countdowns[0] >= 1
    workflow.refresh_from_db()
    assert [e.retryable for e in WorkflowError.objects.filter(workflow=workflow)] == [True] * 2
    assert "retries exhausted" in workflow.last_error
    assert "contact_pending" not in workflow.step_log[Step.RESOLVE_CONTACT]
    assert workflow.status == Status.AWAITING_APPROVAL


@pytest.mark.django_db
def test_the_sweeper_publishes_a_lost_attach_again(crm, settings):
    workflow = new_workflow()
    pipeline.run_workflow(workflow.pk, task_id="task-1")
    settings.SWEEPER_PENDING_AFTER_SECONDS = 60
    Workflow.objects.filter(pk=workflow.pk).update(
        updated_at=timezone.now() - timezone.timedelta(minutes=5)
    )

    assert sweep().attaches == 1
    assert sweep().attaches == 0  # stamped: not again while it runs
    # Its first try may wait in a queue, holding no lease yet: it gets a lease's length.
    settings.WORKFLOW_LEASE_SECONDS = 300
    later = timezone.now() + timezone.timedelta(seconds=120)
    assert sweep(now=later).attaches == 0
    assert sweep(now=later + timezone.timedelta(seconds=200)).attaches == 1


@pytest.mark.django_db
def test_the_sweeper_leaves_an_attach_chain_alone_while_its_lease_runs(crm, settings):
    # A chain between tries (its next one waits out a countdown, maybe behind a queue) holds
    # the attach lease. Publishing another try every sweep flooded the queue in the
    # 500-lead worker-kill run until no chain could finish; only a dead chain is replaced.
    settings.SWEEPER_PENDING_AFTER_SECONDS = 60
    workflow = new_workflow()
    pipeline.run_workflow(workflow.pk, task_id="task-1")
    with pytest.raises(pipeline.AttachAgain):  # one try: a miss; the next one is scheduled
        pipeline.contact_attach(workflow.pk)
    five_minutes_ago = timezone.now() - timezone.timedelta(minutes=5)
    Workflow.objects.filter(pk=workflow.pk).update(updated_at=five_minutes_ago)

    assert sweep().attaches == 0  # the lease runs: the chain is alive

    step_log = Workflow.objects.get(pk=workflow.pk).step_log
    step_log[Step.RESOLVE_CONTACT]["attach_lease"][1] = five_minutes_ago.isoformat()
    Workflow.objects.filter(pk=workflow.pk).update(step_log=step_log)

    assert sweep().attaches == 1  # the lease ran out: the chain died, a new one starts


@pytest.mark.django_db
def test_the_sweeper_backs_off_a_lost_attach_by_the_workflows_age(crm, settings):
    # In the 500-lead worker-kill run (6 s leases), dead chains were started again every
    # lease: 16,976 attach messages. A draft's attach is now published again only once it
    # has been idle since the last publish as long as it had waited for that one.
    settings.SWEEPER_PENDING_AFTER_SECONDS = 60
    settings.WORKFLOW_LEASE_SECONDS = 300
    workflow = new_workflow()
    pipeline.run_workflow(workflow.pk, task_id="task-1")
    now = timezone.now()
    hour_ago = now - timezone.timedelta(hours=1)
    Workflow.objects.filter(pk=workflow.pk).update(
        created_at=hour_ago, updated_at=hour_ago, enqueued_at=now - timezone.timedelta(minutes=20)
    )
    assert sweep(now=now).attaches == 0  # waited 40 min for that publish, idle only 20

    Workflow.objects.filter(pk=workflow.pk).update(enqueued_at=now - timezone.timedelta(minutes=31))
    assert sweep(now=now).attaches == 1  # waited 29 min, idle 31


@pytest.mark.django_db
def test_live_chains_ahead_of_a_dead_one_do_not_hide_it_from_a_sweep(crm, settings):
    settings.SWEEPER_PENDING_AFTER_SECONDS = 60
    five_minutes_ago = timezone.now() - timezone.timedelta(minutes=5)
    live, dead = new_workflow("live@acme.test"), new_workflow("dead@acme.test")
    for workflow in (live, dead):
        pipeline.run_workflow(workflow.pk, task_id=f"task-{workflow.pk}")
        with pytest.raises(pipeline.AttachAgain):  # a miss: the chain holds its lease
            pipeline.contact_attach(workflow.pk)
    step_log = Workflow.objects.get(pk=dead.pk).step_log
    step_log[Step.RESOLVE_CONTACT]["attach_lease"][1] = five_minutes_ago.isoformat()
    Workflow.objects.filter(pk=dead.pk).update(step_log=step_log)
    Workflow.objects.filter(pk=dead.pk).update(updated_at=five_minutes_ago)
    ten_minutes_ago = five_minutes_ago - timezone.timedelta(minutes=5)
    Workflow.objects.filter(pk=live.pk).update(updated_at=ten_minutes_ago)

    # One row per sweep, the longest-waiting first: the live chain must not use up the batch.
    before = timezone.now()
    assert sweep(batch_size=1).attaches == 1
    published = dict(Workflow.objects.values_list("pk", "enqueued_at"))
    assert published[dead.pk] >= before
    assert published[live.pk] is None or published[live.pk] < before


@pytest.mark.django_db
def test_a_chain_started_after_one_died_goes_on_counting_its_misses(crm, settings):
    settings.CONTACT_SEARCH_LAG_RETRIES = 3
    workflow = new_workflow()
    pipeline.run_workflow(workflow.pk, task_id="task-1")
    misses, token = 0, ""
    for _ in range(2):  # two misses, then the chain's next message is lost
        with pytest.raises(pipeline.AttachAgain) as again:
            pipeline.contact_attach(workflow.pk, misses=misses, token=token)
        misses, token = again.value.misses, again.value.token
    step_log = Workflow.objects.get(pk=workflow.pk).step_log
    step_log[Step.RESOLVE_CONTACT]["attach_lease"][1] = timezone.now().isoformat()  # expired
    Workflow.objects.filter(pk=workflow.pk).update(step_log=step_log)

    # The sweeper's new chain starts at misses=0; with the two stored, its first miss is the
    # third, and the contact is created (it was not: each new chain began from none again).
    note = pipeline.contact_attach(workflow.pk, misses=0, attempt=1, token="sweeper-chain")

    workflow.refresh_from_db()
    assert "attached" in note
    assert workflow.contact_id
    assert len(crm.requests("contacts.create")) == 1


@pytest.mark.django_db
def test_with_auto_send_on_the_pipeline_waits_for_the_contact(crm, settings):
    settings.API_ENV = "production"
    settings.MODE_DRAFT_ONLY = False
    settings.ALLOW_AUTO_SEND = True
    settings.SEND_EMAIL_ALLOWLIST = ["acme.test"]
    workflow = new_workflow()
    with pytest.raises(pipeline.RetryLater) as lag:
        pipeline.run_workflow(workflow.pk, task_id="task-1")
    assert lag.value.kind == "index_lag"
    assert not EmailDraft.objects.filter(workflow=workflow).exists()


@pytest.mark.django_db
def test_the_daily_limit_pauses_the_attach_without_an_error_or_an_attempt(crm, settings):
    settings.HUBSPOT_DAILY_PAUSE_SECONDS = 7
    settings.CELERY_BROKER_URL = "memory://daily"  # a throttle of its own: the halt stays here
    workflow = new_workflow()
    pipeline.run_workflow(workflow.pk, task_id="task-1")
    crm.add_fault("contacts.search", {"kind": "status", "status": 429, "policy": "DAILY"})

    with pytest.raises(pipeline.AttachAgain) as paused:
        pipeline.contact_attach(workflow.pk)

    assert paused.value.countdown == 7 and paused.value.attempt == 0
    assert not WorkflowError.objects.filter(workflow=workflow).exists()
    workflow.refresh_from_db()
    assert workflow.step_log[Step.RESOLVE_CONTACT]["contact_pending"] is True


@pytest.mark.django_db
def test_a_second_attach_chain_waits_for_the_lease_and_creates_nothing(crm):
    workflow = new_workflow()
    pipeline.run_workflow(workflow.pk, task_id="task-1")
    with pytest.raises(pipeline.AttachAgain) as first:  # chain A: a miss, waits 0.6 s
        pipeline.contact_attach(workflow.pk, token="chain-a")
    hubspot_creates(crm, email="new@acme.test")

    # chain B (a re-run's or the sweeper's) finds A's lease and leaves it the work
    assert pipeline.contact_attach(workflow.pk, token="chain-b") == "another attach holds the lease"
    assert crm.requests("tasks.create") == []
    pipeline.contact_attach(workflow.pk, misses=first.value.misses, token=first.value.token)

    workflow.refresh_from_db()
    assert workflow.contact_id and len(crm.requests("tasks.create")) == 1
    assert "attach_lease" not in workflow.step_log[Step.RESOLVE_CONTACT]


@pytest.mark.django_db
def test_the_timeline_shows_the_attach_and_its_task_at_their_own_time(crm, client, operator):
    """The attach's note used to replace the step's note at the step's time: the timeline
    dated the attach, and the CRM task it created, to when the lead was drafted."""
    import time
    from datetime import datetime

    from dashboard.selectors import workflow_timeline

    workflow = new_workflow("timeline@acme.test")
    pipeline.run_workflow(workflow.pk, task_id="task-1")
    time.sleep(0.3)  # the attach comes later, as it does in production
    contact_id = hubspot_creates(crm, email="timeline@acme.test")
    assert attach(workflow.pk) == []

    workflow.refresh_from_db()
    entry = workflow.step_log[Step.RESOLVE_CONTACT]
    attached_at = datetime.fromisoformat(entry["attached_at"])
    assert datetime.fromisoformat(entry["finished_at"]) < attached_at
    assert entry["note"].startswith("not in HubSpot's search yet")  # the step's own, kept
    timeline = {e.title: e for e in workflow_timeline(workflow)}
    step = next(e for t, e in timeline.items() if t.startswith("step resolve_contact finished"))
    assert "not in HubSpot's search yet" in step.text and f"contact {contact_id}" not in step.text
    attached = timeline["step resolve_contact: contact attach ended"]
    assert attached.at == attached_at and f"contact {contact_id} attached" in attached.text
    task = timeline["step create_crm_task: task created by the contact attach"]
    assert task.text == f"task {workflow.task_id}"
    crm_step = next(e for t, e in timeline.items() if t.startswith("step create_crm_task finish"))
    assert crm_step.at < attached_at and "no contact yet" in crm_step.text
    assert task.at > crm_step.at and attached.at > step.at
    client.force_login(operator)
    page = client.get(f"/dashboard/workflows/{workflow.pk}/").content.decode()
    assert page.index("contact attach ended") > page.index("step resolve_contact finished")


@pytest.mark.django_db
def test_a_step_log_from_before_the_fix_shows_its_attach_at_the_attach_time():
    """Rows written before attach_note existed: the note in ``note`` was the attach's."""
    from datetime import UTC, datetime

    from dashboard.selectors import workflow_timeline

    def at(second: int) -> str:
        return datetime(2026, 12, 1, 12, 0, second, tzinfo=UTC).isoformat()

    workflow = new_workflow("legacy@acme.test")
    workflow.step_log = {
        Step.RESOLVE_CONTACT: {
            "started_at": at(0),
            "finished_at": at(1),
            "attempts": 1,
            "note": "contact 7 attached, owner none",
            "attached_at": at(30),
        },
        Step.CREATE_CRM_TASK: {"started_at": at(2), "finished_at": at(3), "note": "task 9"},
    }
    shown = [(e.at.second, e.title, e.text) for e in workflow_timeline(workflow)]
    assert shown == [
        (0, "step resolve_contact finished in 1.00s", "attempts: 1"),
        (2, "step create_crm_task finished in 1.00s", ""),
        (30, "step resolve_contact: contact attach ended", "contact 7 attached, owner none"),
        (30, "step create_crm_task: task created by the contact attach", "task 9"),
    ]
