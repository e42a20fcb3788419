"""The Forms poll against the sandbox over HTTP, on the real database."""

from __future__ import annotations

import io
import json
import time

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from config import runstate
from intake.models import FormSubmission
from workflows.hubspot.management.commands.reconcile_forms import Command as ReconcileCommand
from workflows.hubspot.models import FormHighWater, HubSpotAccount, ReconcileRun
from workflows.hubspot.reconcile import ReconcileFailed, forms_reconcile, last_successful_run
from workflows.models import Trigger, Workflow

FORM = "7d3c2b1a-0000-4000-8000-00000000f0a1"
HOUR_MS = 3600 * 1000


@pytest.fixture
def hubspot(hubspot_sandbox, settings):
    settings.HUBSPOT_FORM_IDS = [FORM]
    hubspot_sandbox.seed_form(id=FORM, name="Pricing request")
    return hubspot_sandbox


def submission(n: int, at_ms: int) -> dict:
    return {
        "conversionId": f"conv-{n:04d}",
        "submittedAt": at_ms,
        "values": [
            {"name": "email", "value": f"lead{n}@outage.test", "objectTypeId": "0-1"},
            {"name": "firstname", "value": f"Lead{n}", "objectTypeId": "0-1"},
            {"name": "message", "value": "Please call me", "objectTypeId": "0-1"},
        ],
    }


@pytest.mark.django_db
def test_a_two_day_outage_is_reconciled_once_and_a_second_run_ingests_none(hubspot):
    now_ms = int(time.time() * 1000)
    hubspot.seed_submissions(FORM, [submission(0, now_ms - 50 * HOUR_MS)])
    before = forms_reconcile()
    assert (before.total("found"), before.total("ingested")) == (1, 1)

    # Leadline is down for two days: 60 leads (more than one page of 50) never reach it.
    missed = [submission(n, now_ms - 48 * HOUR_MS + n * 45 * 60 * 1000) for n in range(1, 61)]
    hubspot.seed_submissions(FORM, missed)

    after = forms_reconcile()
    assert after.total("ingested") == 60
    assert after.total("known") == 1  # the one at the high-water mark, read again
    polled = FormSubmission.objects.filter(form_id=FORM)
    assert polled.count() == 61
    assert sorted(polled.values_list("email", flat=True)) == sorted(
        f"lead{n}@outage.test" for n in range(61)
    )
    assert Workflow.objects.filter(trigger=Trigger.RECONCILE).count() == 61
    pages = hubspot.requests("forms.submissions")
    assert all(int(r.query["limit"][0]) <= 50 for r in pages)
    assert any("after" in r.query for r in pages)  # it paged

    again = forms_reconcile()
    assert again.total("ingested") == 0
    assert FormSubmission.objects.filter(form_id=FORM).count() == 61
    assert FormHighWater.objects.get(form_id=FORM).submitted_at_ms == missed[-1]["submittedAt"]
    assert last_successful_run().pk == again.run_id


@pytest.mark.django_db
def test_a_dry_run_counts_and_stores_nothing(hubspot):
    now_ms = int(time.time() * 1000)
    hubspot.seed_submissions(FORM, [submission(n, now_ms - n * HOUR_MS) for n in range(3)])

    out = io.StringIO()
    call_command("reconcile_forms", "--dry-run", "--form", FORM, stdout=out)

    assert "dry run, nothing recorded: found 3, already known 0, would ingest 3" in out.getvalue()
    assert FormSubmission.objects.count() == 0
    assert not FormHighWater.objects.exists()
    assert not ReconcileRun.objects.exists()  # nor a "last successful run" on the dashboard
    assert not HubSpotAccount.objects.exists()  # nor the account it read


@pytest.mark.django_db
def test_a_purged_submission_is_known_to_the_poll_and_costs_no_hubspot_call(hubspot):
    # Ingest counts a purged key as stored; the poll must too, or it spends a contact search
    # on each one (and a dry run promises ingests that will not happen).
    from intake.models import PurgedDeliveryKey
    from intake.payloads import parse_forms_api_submission

    now_ms = int(time.time() * 1000)
    old = submission(1, now_ms - HOUR_MS)
    hubspot.seed_submissions(FORM, [old])
    key = parse_forms_api_submission(old, portal_id=1, form_id=FORM).dedupe_key
    PurgedDeliveryKey.objects.create(dedupe_key=key, purged_at=timezone.now())

    result = forms_reconcile()

    assert (result.total("found"), result.total("known"), result.total("ingested")) == (1, 1, 0)
    assert not hubspot.requests("contacts.search")


@pytest.mark.django_db
def test_a_failed_dry_run_records_nothing_and_alerts_no_one(hubspot, settings):
    settings.ALERT_EMAILS = ["ops@example.com"]
    hubspot.add_fault("forms.submissions", {"kind": "status", "status": 403, "times": 1})

    with pytest.raises(CommandError, match="reconciliation failed"):
        call_command("reconcile_forms", "--dry-run", stdout=io.StringIO())

    assert not ReconcileRun.objects.exists()
    assert mail.outbox == []


@pytest.fixture
def run_state(tmp_path, monkeypatch):
    """An empty var/run for config.runstate: no running `make run` yet; PORT unset."""
    monkeypatch.setattr(runstate, "RUN_DIR", tmp_path / "run")
    monkeypatch.delenv("PORT", raising=False)
    return tmp_path / "run"


@pytest.mark.django_db
def test_by_hand_without_a_token_it_polls_the_running_make_runs_sandbox(
    hubspot, settings, run_state
):
    """`make run` started the sandbox (its token is run.sh's, not in this shell's settings)."""
    settings.HUBSPOT_ACCESS_TOKEN = ""
    settings.HUBSPOT_API_BASE_URL = "https://api.hubapi.com"
    hubspot.seed_submissions(FORM, [submission(1, int(time.time() * 1000))])
    (run_state / "8901").mkdir(parents=True)
    runstate.write_instance(8901, sandbox_url=hubspot.url, secret_file="")
    out = io.StringIO()
    with open(run_state / "8901" / "lock", "w") as lock:
        runstate.lock_instance(lock.fileno())  # held while `make run` runs
        call_command("reconcile_forms", "--form", FORM, stdout=out)

    assert (
        "HUBSPOT_ACCESS_TOKEN is not set: polling the local HubSpot sandbox of the running "
        f"`make run` on port 8901 ({hubspot.url})."
    ) in out.getvalue()
    assert "ingested 1" in out.getvalue()
    assert FormSubmission.objects.filter(form_id=FORM).count() == 1


@pytest.mark.django_db
def test_without_a_token_or_a_make_run_it_says_what_to_set_and_records_nothing(settings, run_state):
    settings.HUBSPOT_ACCESS_TOKEN = ""
    settings.ALERT_EMAILS = ["ops@example.com"]

    with pytest.raises(CommandError, match="set HUBSPOT_ACCESS_TOKEN") as failed:
        call_command("reconcile_forms", stdout=io.StringIO())

    assert "no running `make run` with a local HubSpot sandbox" in str(failed.value)
    assert not ReconcileRun.objects.exists()
    assert mail.outbox == []


@pytest.mark.django_db
def test_without_configured_forms_it_polls_every_form_of_the_account(hubspot, settings):
    settings.HUBSPOT_FORM_IDS = []
    hubspot.seed_submissions(FORM, [submission(1, int(time.time() * 1000))])

    result = forms_reconcile()

    assert {f.form_id for f in result.forms} >= {FORM}
    assert result.total("ingested") == 1


@pytest.mark.django_db
def test_a_failed_run_is_recorded_and_alerted(hubspot, settings):
    settings.ALERT_EMAILS = ["ops@example.com"]
    hubspot.add_fault("forms.submissions", {"kind": "status", "status": 403, "times": 1})

    with pytest.raises(ReconcileFailed):
        forms_reconcile()

    run = ReconcileRun.objects.get()
    assert run.ok is False and "403" in run.error
    [alert] = mail.outbox
    assert "Forms reconciliation" in alert.subject and "lead" not in alert.body.split("\n")[0]
    assert last_successful_run() is None


@pytest.mark.django_db
def test_a_lead_the_webhook_delivered_is_known_to_the_poll_and_starts_no_second_workflow(
    hubspot,
):
    from django.utils import timezone

    from intake.payloads import parse_body
    from intake.services import submissions_ingest

    now_ms = int(time.time() * 1000)
    webhook_body = {
        "portalId": 62515,
        "formGuid": FORM,
        "submittedAt": str(now_ms),
        "fields": [{"name": "email", "value": "lead1@outage.test"}],
    }
    submissions_ingest(
        items=parse_body(json.dumps(webhook_body).encode()),
        signature_version="v3",
        received_at=timezone.now(),
    )
    hubspot.seed_submissions(FORM, [submission(1, now_ms), submission(2, now_ms - 1000)])

    result = forms_reconcile()

    assert (result.total("found"), result.total("known"), result.total("ingested")) == (2, 1, 1)
    assert Workflow.objects.count() == 2  # lead1 (webhook) and lead2 (poll)


@pytest.mark.django_db
def test_since_reads_back_past_the_mark_and_finds_nothing_new_twice(hubspot):
    now_ms = int(time.time() * 1000)
    hubspot.seed_submissions(FORM, [submission(n, now_ms - n * 24 * HOUR_MS) for n in range(4)])
    forms_reconcile()  # first run: the last 7 days, all four
    out = io.StringIO()

    call_command("reconcile_forms", "--since", "2000-01-01", stdout=out)

    assert "found 4, already known 4, ingested 0" in out.getvalue()


@pytest.mark.django_db
def test_the_beat_tasks_poll_forms_and_refresh_names(hubspot):
    from workflows.hubspot import tasks
    from workflows.hubspot.models import HubSpotName

    hubspot.seed_submissions(FORM, [submission(1, int(time.time() * 1000))])

    assert tasks.reconcile_forms() == {"found": 1, "known": 0, "ingested": 1, "refused": 0}
    assert tasks.refresh_names() == 1  # the form in use; no owner yet
    assert HubSpotName.objects.get(hubspot_id=FORM).name == "Pricing request"


def test_a_mistyped_since_is_a_one_line_usage_error(capsys):
    """As typed on the command line: argparse's usage and one error line, exit 2, and no run
    (a CommandError raised inside the argparse type was a 30-line traceback)."""
    with pytest.raises(SystemExit) as exited:
        ReconcileCommand().run_from_argv(["manage.py", "reconcile_forms", "--since", "garbage"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "manage.py reconcile_forms: error: argument --since: 'garbage': give a date "
        "(2026-11-29) or an ISO datetime"
    )
    assert "Traceback" not in err
