"""`manage.py replay`: select, show, confirm, replay through workflows_replay, report."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from config import runstate
from intake.models import FormSubmission
from outreach.models import EmailDraft
from workflows.management.commands.replay import Command as ReplayCommand
from workflows.models import AuditEvent, Status, Trigger, Workflow

pytestmark = pytest.mark.django_db


def make_runs(n: int, *, status: str = Status.FAILED, form_id: str = "form-contact", age_days=0):
    """n submissions with one workflow each, in three bulk queries."""
    created = timezone.now() - dt.timedelta(days=age_days)
    subs = FormSubmission.objects.bulk_create(
        FormSubmission(
            dedupe_key=f"test-{uuid.uuid4().hex}",
            shape="forms",
            signature_version="v3",
            raw_payload={},
            email=f"lead-{uuid.uuid4().hex[:8]}@example.com",
            form_id=form_id,
            received_at=created,
        )
        for _ in range(n)
    )
    runs = Workflow.objects.bulk_create(Workflow(submission=s, status=status) for s in subs)
    Workflow.objects.filter(pk__in=[w.pk for w in runs]).update(created_at=created)
    return runs


def replay(*args: str) -> str:
    out = io.StringIO()
    call_command("replay", *args, stdout=out)
    return out.getvalue()


def replays() -> list[Workflow]:
    return list(Workflow.objects.filter(trigger=Trigger.REPLAY).order_by("id"))


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_dry_run_lists_the_selection_and_creates_nothing():
    (run,) = make_runs(1)
    Workflow.objects.filter(pk=run.pk).update(
        created_at=dt.datetime(2026, 12, 1, 20, 18, 30, tzinfo=dt.UTC)
    )
    output = replay("--status", "failed", "--dry-run")
    # Times name their zone (TIME_ZONE, the zone --since/--until days are read in).
    assert "failed             2026-12-01 20:18 UTC" in output
    assert str(run.pk) in output
    assert run.submission.email in output
    assert "1 workflow(s) would be replayed" in output
    assert replays() == []


def test_yes_replays_each_as_a_new_linked_run_with_an_audit_row():
    runs = make_runs(2)
    output = replay("--status", "failed", "--yes")
    new = replays()
    assert sorted(w.replay_of_id for w in new) == sorted(w.pk for w in runs)
    assert all(w.status == Status.PENDING and not w.shadow for w in new)
    assert AuditEvent.objects.filter(action="workflow.replayed", workflow__in=new).count() == 2
    # The dashboard's and the admin's sentence (workflows/messages.replay_text); no shadow run.
    shown = ", ".join(f"#{pk}" for pk in sorted(w.pk for w in new))
    assert f"Replaying 2 workflow(s) as {shown}." in output and "shadow" not in output
    assert set(
        Workflow.objects.filter(pk__in=[w.pk for w in runs]).values_list("status", flat=True)
    ) == {Status.FAILED}


def test_selects_by_workflow_id():
    first, _second = make_runs(2)
    replay("--workflow", str(first.pk), "--yes")
    assert [w.replay_of_id for w in replays()] == [first.pk]


def test_selects_the_latest_run_of_a_submission():
    (old,) = make_runs(1)
    latest = Workflow.objects.create(submission=old.submission, status=Status.REJECTED)
    make_runs(1)
    replay("--submission", str(old.submission_id), "--yes")
    assert [w.replay_of_id for w in replays()] == [latest.pk]


def test_selects_by_several_statuses():
    (failed,) = make_runs(1, status=Status.FAILED)
    (rejected,) = make_runs(1, status=Status.REJECTED)
    make_runs(1, status=Status.COMPLETED)
    replay("--status", "failed", "--status", "rejected", "--yes")
    assert sorted(w.replay_of_id for w in replays()) == sorted([failed.pk, rejected.pk])


def test_selects_by_dates_form_email_and_limit():
    (old,) = make_runs(1, age_days=10)
    recent = make_runs(3, form_id="demo")
    make_runs(1, form_id="other")
    week_ago = (timezone.now() - dt.timedelta(days=7)).date().isoformat()
    assert f"{old.pk:>8}" in replay("--until", week_ago, "--dry-run")
    assert f"{old.pk:>8}" not in replay("--since", week_ago, "--dry-run")
    assert "3 workflow(s)" in replay("--form-id", "demo", "--dry-run")
    assert "2 workflow(s)" in replay("--form-id", "demo", "--limit", "2", "--dry-run")
    email = recent[0].submission.email.upper()
    assert "1 workflow(s)" in replay("--email", email, "--dry-run")


def test_refuses_without_a_selection():
    make_runs(1)
    with pytest.raises(CommandError, match="Say what to replay"):
        replay("--yes")


def test_refuses_without_yes_when_stdin_is_not_a_terminal(monkeypatch):
    make_runs(1)
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    with pytest.raises(CommandError, match="not a terminal"):
        replay("--status", "failed")
    assert replays() == []


def test_answering_no_at_the_prompt_replays_nothing(monkeypatch, capsys):
    make_runs(3)
    monkeypatch.setattr("sys.stdin", FakeTerminal("n\n"))
    output = replay("--status", "failed")
    assert "Replay 3 workflows? [y/N]" in capsys.readouterr().out
    assert "Nothing replayed." in output
    assert replays() == []


def test_answering_yes_at_the_prompt_replays(monkeypatch):
    make_runs(1)
    monkeypatch.setattr("sys.stdin", FakeTerminal("y\n"))
    replay("--status", "failed")
    assert len(replays()) == 1


def test_shadow_is_forced_when_an_earlier_run_sent():
    (failed,) = make_runs(1)
    Workflow.objects.create(submission=failed.submission, status=Status.SENT)
    (other,) = make_runs(1)
    output = replay("--workflow", str(failed.pk), str(other.pk), "--yes")
    by_original = {w.replay_of_id: w for w in replays()}
    assert by_original[failed.pk].shadow is True
    assert by_original[other.pk].shadow is False
    assert "1 in shadow mode" in output
    assert "Shadow mode was forced" in output
    assert f"shadow #{by_original[failed.pk].pk} (replay of #{failed.pk})" in output
    assert f"--show-diff {by_original[failed.pk].pk}" in output


def test_shadow_flag_makes_every_replay_shadow():
    make_runs(2)
    output = replay("--status", "failed", "--shadow", "--yes")
    assert all(w.shadow for w in replays())
    assert "Shadow mode was forced" not in output


def test_large_selection_reports_progress_per_batch():
    make_runs(2500)
    output = replay("--status", "failed", "--yes", "--batch-size", "1000")
    assert [line for line in output.splitlines() if line.startswith("queued")] == [
        "queued 1000/2500",
        "queued 2000/2500",
        "queued 2500/2500",
    ]
    assert len(replays()) == 2500
    assert AuditEvent.objects.filter(action="workflow.replayed").count() == 2500


def _draft(workflow: Workflow, body: str) -> None:
    EmailDraft.objects.create(
        workflow=workflow,
        recipient=workflow.submission.email,
        subject="Hello",
        body=body,
        original_subject="Hello",
        original_body=body,
        template="default",
        idempotency_key=uuid.uuid4().hex,
    )


def test_show_diff_compares_a_replays_draft_with_the_originals():
    (original,) = make_runs(1, status=Status.SENT)
    _draft(original, "Hi,\nSee you Monday.")
    new = Workflow.objects.create(
        submission=original.submission,
        status=Status.COMPLETED,
        trigger=Trigger.REPLAY,
        replay_of=original,
        shadow=True,
    )
    _draft(new, "Hi,\nSee you Tuesday.")
    output = replay("--show-diff", str(new.pk))
    assert "-See you Monday." in output
    assert "+See you Tuesday." in output


def test_show_diff_says_when_the_replay_has_not_drafted_yet():
    (original,) = make_runs(1, status=Status.SENT)
    new = Workflow.objects.create(
        submission=original.submission, trigger=Trigger.REPLAY, replay_of=original
    )
    with pytest.raises(CommandError, match="has not drafted yet"):
        replay("--show-diff", str(new.pk))


@pytest.mark.parametrize("flag", ["--since", "--until"])
def test_a_mistyped_date_is_a_one_line_usage_error(flag, capsys):
    """As typed on the command line: argparse's usage and one error line, exit 2 (a
    CommandError raised inside the argparse type was a 30-line traceback)."""
    with pytest.raises(SystemExit) as exited:
        ReplayCommand().run_from_argv(["manage.py", "replay", flag, "yesterday", "--dry-run"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"manage.py replay: error: argument {flag}: 'yesterday' is not an ISO date (YYYY-MM-DD)"
    )
    assert "Traceback" not in err


def test_a_refusal_names_the_run_once_and_its_status_as_the_dashboard_does():
    (waiting,) = make_runs(1, status=Status.SEND_UNKNOWN)
    (sibling,) = make_runs(1, status=Status.FAILED)
    live = Workflow.objects.create(submission=sibling.submission, status=Status.AWAITING_APPROVAL)
    out = io.StringIO()
    with pytest.raises(CommandError, match="2 not replayed"):
        call_command("replay", "--workflow", str(waiting.pk), str(sibling.pk), "--yes", stdout=out)
    output = out.getvalue()
    assert (
        f"  #{waiting.pk} not replayed: still “Send outcome unknown” (send_unknown); it has "
        "not ended, so there is nothing to replay yet"
    ) in output.splitlines()
    assert (
        f"  #{sibling.pk} not replayed: #{live.pk}, another run of the same submission, is "
        "still “Awaiting approval” (awaiting_approval)"
    ) in output.splitlines()
    assert output.count(f"#{waiting.pk}") == 1
    assert replays() == []


def replay_fails(*args: str) -> tuple[str, str]:
    """Run a replay that must exit 1: (its output, its error message)."""
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("replay", *args, stdout=out)
    assert failed.value.returncode == 1
    return out.getvalue(), str(failed.value)


def test_a_named_workflow_or_submission_that_does_not_exist_exits_1():
    (run,) = make_runs(1)
    output, error = replay_fails("--workflow", "99999", "--yes")
    assert output == "No workflows match; nothing replayed.\n"
    assert error == "Not everything named was replayed: no workflow #99999."
    # The others named are replayed; the missing one still fails the command.
    _, error = replay_fails("--workflow", str(run.pk), "99999", "--yes")
    assert [w.replay_of_id for w in replays()] == [run.pk]
    assert error.endswith("no workflow #99999.")
    _, error = replay_fails("--submission", "99999", "--dry-run")
    assert error == "Not everything named would be replayed: submission 99999 has no workflow."


def test_a_named_workflow_the_other_options_leave_out_exits_1():
    (run,) = make_runs(1, status=Status.COMPLETED)
    _, error = replay_fails("--workflow", str(run.pk), "--status", "failed", "--dry-run")
    assert error.endswith(f"#{run.pk} is left out by the other options.")


def test_a_named_workflow_refused_exits_1_and_the_refusal_is_listed():
    (run,) = make_runs(1)
    replay("--workflow", str(run.pk), "--yes")
    (new,) = replays()
    output, error = replay_fails("--workflow", str(run.pk), "--yes")
    assert f"  #{run.pk} not replayed: already replayed as #{new.pk}" in output.splitlines()
    assert error == "Not everything named was replayed: 1 not replayed (listed above)."
    output, error = replay_fails("--submission", str(run.submission_id), "--yes")  # latest: new
    assert f"  #{new.pk} not replayed: still “Pending”" in output


def test_a_dry_run_predicts_the_refusals_shadow_modes_and_exit_code_of_the_real_run():
    """The dry run asks the replay's own decision (workflows_replay_preview), so what it lists
    and how it exits are what the real run would do, and it still writes nothing."""
    replayed, fresh, sent = make_runs(3)
    replay("--workflow", str(replayed.pk), "--yes")
    (earlier,) = replays()
    Workflow.objects.filter(pk=sent.pk).update(status=Status.SENT)
    before = (Workflow.objects.count(), AuditEvent.objects.count())
    named = ["--workflow", str(replayed.pk), str(fresh.pk), str(sent.pk)]

    output, error = replay_fails(*named, "--dry-run")

    lines = output.splitlines()
    assert any(
        line.startswith(f"{replayed.pk:>8}")
        and line.endswith(f"not replayed: already replayed as #{earlier.pk}")
        for line in lines
    ), output
    assert any(line.startswith(f"{sent.pk:>8}") and line.endswith("shadow") for line in lines)
    assert (
        "2 workflow(s) would be replayed, 1 of them in shadow mode (an earlier run sent); "
        "1 would not (listed above) (dry run: nothing changed)." in output
    )
    assert error == "Not everything named would be replayed: 1 not replayed (listed above)."
    assert (Workflow.objects.count(), AuditEvent.objects.count()) == before

    output, error = replay_fails(*named, "--yes")  # the real run does what was predicted
    assert error == "Not everything named was replayed: 1 not replayed (listed above)."
    new = {w.replay_of_id: w for w in replays() if w.pk != earlier.pk}
    assert set(new) == {fresh.pk, sent.pk} and new[sent.pk].shadow and not new[fresh.pk].shadow


def test_filters_alone_that_match_nothing_or_meet_refusals_exit_0():
    assert replay("--status", "failed", "--yes") == "No workflows match; nothing replayed.\n"
    (run,) = make_runs(1)
    replay("--workflow", str(run.pk), "--yes")
    output = replay("--status", "failed", "--yes")  # the original, already replayed: refused
    assert f"#{run.pk} not replayed: already replayed as" in output


def test_the_shadow_link_points_at_the_running_make_run(settings, tmp_path, monkeypatch):
    """`make run` on 8901 (PORT unset in this shell): the link is 8901's, as send_test_webhook
    finds it, not DASHBOARD_BASE_URL's default port."""
    monkeypatch.setattr(runstate, "RUN_DIR", tmp_path / "run")
    monkeypatch.delenv("PORT", raising=False)
    settings.PUBLIC_BASE_URL = ""
    settings.DASHBOARD_BASE_URL = "http://127.0.0.1:8000"
    (tmp_path / "run" / "8901").mkdir(parents=True)
    runstate.write_instance(8901, sandbox_url="", secret_file="")
    with open(tmp_path / "run" / "8901" / "lock", "w") as lock:
        runstate.lock_instance(lock.fileno())  # held while `make run` runs
        (run,) = make_runs(1)
        output = replay("--workflow", str(run.pk), "--shadow", "--yes")
    (new,) = replays()
    assert f"(or open http://127.0.0.1:8901/dashboard/workflows/{new.pk}/)" in output

    # PUBLIC_BASE_URL set: that is where the dashboard is, whatever runs locally.
    settings.PUBLIC_BASE_URL = settings.DASHBOARD_BASE_URL = "https://leads.example.com"
    output = replay("--workflow", str(run.pk), "--shadow", "--yes")
    assert "(or open https://leads.example.com/dashboard/workflows/" in output
