"""Replay workflows from the command line: select, show, confirm, then one service call per batch.

    manage.py replay --status failed --since 2026-11-01 --dry-run
    manage.py replay --workflow 812 813 --shadow --yes
    manage.py replay --show-diff 9051        # a finished shadow replay's draft vs the original's

Every replay goes through ``workflows.services.workflows_replay`` (a new run per workflow,
trigger=replay; the service forces shadow mode when an earlier run of the submission sent).
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import getpass
import sys
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import OuterRef, QuerySet, Subquery
from django.urls import reverse

from config import runstate
from dashboard.selectors import WorkflowFilters
from dashboard.texts import time_text
from outreach.models import EmailDraft
from workflows.messages import replay_text
from workflows.models import Status, Workflow
from workflows.services import (
    ReplayRefusal,
    ReplayResult,
    workflows_replay,
    workflows_replay_preview,
)

LISTED_AT_MOST = 20


def _iso_date(value: str) -> dt.date:
    """An argparse ``type``: a bad value is a one-line usage error (exit 2), not a traceback."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = (
        "Replay workflows (each becomes a new run of its submission). Asks before acting. "
        "Exits 1 when a workflow or submission named with --workflow or --submission is not "
        "replayed (it does not exist, the other options leave it out, or it is refused); a "
        "selection by filters alone that matches nothing, or has refusals, exits 0."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        pick = parser.add_argument_group("selection (combined with AND)")
        pick.add_argument("--workflow", nargs="+", type=int, default=[], metavar="ID")
        pick.add_argument(
            "--submission",
            nargs="+",
            type=int,
            default=[],
            metavar="ID",
            help="Replay the latest run of each of these submissions.",
        )
        pick.add_argument(
            "--status", action="append", choices=Status.values, default=[], help="Repeatable."
        )
        pick.add_argument("--since", type=_iso_date, help="Created on or after (YYYY-MM-DD).")
        pick.add_argument("--until", type=_iso_date, help="Created on or before (YYYY-MM-DD).")
        pick.add_argument("--form-id", default="")
        pick.add_argument("--email", default="")
        pick.add_argument("--limit", type=int, help="Replay at most this many (oldest first).")
        parser.add_argument("--dry-run", action="store_true", help="List them; change nothing.")
        parser.add_argument(
            "--shadow", action="store_true", help="Look up and draft only; no CRM task, no send."
        )
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        parser.add_argument("--reason", default="", help="Recorded on each audit row.")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument(
            "--show-diff",
            type=int,
            metavar="WORKFLOW_ID",
            help="Print a finished replay's draft as a diff against its original's; no replay.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["show_diff"] is not None:
            self._show_diff(options["show_diff"])
            return
        if options["batch_size"] < 1 or (options["limit"] is not None and options["limit"] < 1):
            raise CommandError("--batch-size and --limit must be at least 1.")
        selection = self._select(options)
        # Read before replaying: afterwards a submission's latest run is its new one.
        chosen = list(selection.values_list("id", "submission_id"))
        if options["dry_run"]:
            refused = self._list(selection, options)
            self._fail_if_named_left_out(chosen, options, refused=refused)
            return
        ids = [pk for pk, _ in chosen]
        if not ids:
            self.stdout.write("No workflows match; nothing replayed.")
            self._fail_if_named_left_out(chosen, options)
            return
        if not options["yes"] and not self._confirmed(len(ids)):
            self.stdout.write("Nothing replayed.")
            return
        refused = self._replay(ids, options)
        self._fail_if_named_left_out(chosen, options, refused=len(refused))

    # --- selection ---------------------------------------------------------------------------

    def _select(self, options: dict[str, Any]) -> QuerySet[Workflow]:
        keys = ("workflow", "submission", "status", "since", "until", "form_id", "email")
        if not any(options[key] for key in keys):
            raise CommandError(
                "Say what to replay: --workflow, --submission, --status, --since/--until, "
                "--form-id or --email (see --help)."
            )
        qs = WorkflowFilters(
            form_id=options["form_id"],
            date_from=options["since"],
            date_to=options["until"],
            email=options["email"],
        ).apply(Workflow.objects.all())
        if options["workflow"]:
            qs = qs.filter(pk__in=options["workflow"])
        if options["submission"]:
            latest = Workflow.objects.filter(submission_id=OuterRef("submission_id")).order_by(
                "-created_at", "-id"
            )
            qs = qs.filter(submission_id__in=options["submission"]).filter(
                pk=Subquery(latest.values("id")[:1])
            )
        if options["status"]:
            qs = qs.filter(status__in=options["status"])
        qs = qs.order_by("created_at", "id")
        return qs[: options["limit"]] if options["limit"] else qs

    def _fail_if_named_left_out(
        self, chosen: Iterable[tuple[int, int]], options: dict[str, Any], *, refused: int = 0
    ) -> None:
        """Exit 1 (CommandError) when a workflow or submission named explicitly was not
        replayed: it does not exist, the other options leave it out of ``chosen`` (the
        selection's (id, submission id) pairs), or it was refused (those are listed above). A
        selection by filters alone is not checked: matching nothing, or some refusals, is an
        answer, not an error."""
        if not options["workflow"] and not options["submission"]:
            return
        chosen = list(chosen)
        problems = []
        if options["workflow"]:
            named = set(options["workflow"])
            existing = set(Workflow.objects.filter(pk__in=named).values_list("id", flat=True))
            selected = {pk for pk, _ in chosen}
            problems += [f"no workflow #{pk}" for pk in sorted(named - existing)]
            problems += [
                f"#{pk} is left out by the other options" for pk in sorted(existing - selected)
            ]
        if options["submission"]:
            named = set(options["submission"])
            existing = set(
                Workflow.objects.filter(submission_id__in=named).values_list(
                    "submission_id", flat=True
                )
            )
            selected = {submission for _, submission in chosen}
            problems += [f"submission {pk} has no workflow" for pk in sorted(named - existing)]
            problems += [
                f"submission {pk}'s latest run is left out by the other options"
                for pk in sorted(existing - selected)
            ]
        if refused:
            problems.append(f"{refused} not replayed (listed above)")
        if problems:
            verb = "would be" if options["dry_run"] else "was"
            raise CommandError(f"Not everything named {verb} replayed: {'; '.join(problems)}.")

    def _list(self, selection: QuerySet[Workflow], options: dict[str, Any]) -> int:
        """The selection, one line each, and what a real run would do with it now (the
        replay's own decision, nothing written): returns how many it would refuse."""
        rows = list(selection.values_list("id", "submission__email", "status", "created_at"))
        preview = workflows_replay_preview(
            workflow_ids=[row[0] for row in rows], shadow=options["shadow"]
        )
        refused = {refusal.workflow_id: refusal.reason for refusal in preview.refused}
        shadow = set(preview.shadow)
        for pk, email, status, created in rows:
            outcome = (
                f"not replayed: {refused[pk]}"
                if pk in refused
                else ("shadow" if pk in shadow else "")
            )
            line = f"{pk:>8}  {email or '(no email)':<40} {status:<18} {time_text(created)}"
            self.stdout.write(f"{line}  {outcome}".rstrip())
        forced = len(shadow) if not options["shadow"] else 0
        self.stdout.write(
            f"{len(preview.created)} workflow(s) would be replayed"
            + (f", {forced} of them in shadow mode (an earlier run sent)" if forced else "")
            + (f"; {len(refused)} would not (listed above)" if refused else "")
            + " (dry run: nothing changed)."
        )
        return len(refused)

    def _confirmed(self, count: int) -> bool:
        if not sys.stdin.isatty():
            raise CommandError(
                f"Refusing to replay {count} workflow(s) without confirmation: stdin is not a "
                "terminal. Pass --yes (after checking the selection with --dry-run)."
            )
        answer = input(f"Replay {count} workflows? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    # --- acting -----------------------------------------------------------------------------

    def _replay(self, ids: list[int], options: dict[str, Any]) -> list[ReplayRefusal]:
        size, total = options["batch_size"], len(ids)
        actor = f"manage.py replay ({getpass.getuser()})"
        created: list[int] = []
        shadow: list[int] = []
        refused: list[ReplayRefusal] = []
        for start in range(0, total, size):
            result = workflows_replay(
                workflow_ids=ids[start : start + size],
                actor=actor,
                shadow=options["shadow"],
                reason=options["reason"] or "manage.py replay",
                batch_size=size,
            )
            created += result.created
            shadow += result.shadow
            refused += result.refused
            if total > size:
                self.stdout.write(f"queued {min(start + size, total)}/{total}")
        # The dashboard's and the admin's sentence; the refusals are listed below it.
        summary = replay_text(
            ReplayResult(created, shadow, refused), shadow_requested=options["shadow"], listed=0
        )
        self.stdout.write(self.style.SUCCESS(summary))
        for refusal in refused[:LISTED_AT_MOST]:
            self.stdout.write(f"  #{refusal.workflow_id} not replayed: {refusal.reason}")
        if len(refused) > LISTED_AT_MOST:
            self.stdout.write(f"  … and {len(refused) - LISTED_AT_MOST} more not replayed")
        self._report_shadow(shadow, forced=not options["shadow"])
        return refused

    def _report_shadow(self, shadow: list[int], *, forced: bool) -> None:
        if not shadow:
            return
        if forced:
            self.stdout.write(
                "Shadow mode was forced where an earlier run of the submission sent (or may "
                "have sent) an email: those replays draft only and never send."
            )
        pairs = Workflow.objects.filter(pk__in=shadow[:LISTED_AT_MOST]).values_list(
            "id", "replay_of_id"
        )
        for new_id, old_id in sorted(pairs):
            self.stdout.write(f"  shadow #{new_id} (replay of #{old_id})")
        if len(shadow) > LISTED_AT_MOST:
            self.stdout.write(f"  … and {len(shadow) - LISTED_AT_MOST} more")
        example = shadow[0]
        detail = _dashboard_base_url() + reverse(
            "dashboard:workflow_detail", kwargs={"pk": example}
        )
        self.stdout.write(
            "Once a shadow replay has drafted, compare its draft with the original's: "
            f"manage.py replay --show-diff {example}  (or open {detail})."
        )

    # --- diff ----------------------------------------------------------------------------------

    def _show_diff(self, workflow_id: int) -> None:
        workflow = Workflow.objects.filter(pk=workflow_id).first()
        if workflow is None:
            raise CommandError(f"No workflow #{workflow_id}.")
        if workflow.replay_of_id is None:
            raise CommandError(f"Workflow #{workflow_id} is not a replay: nothing to compare.")
        drafts = {
            d.workflow_id: d
            for d in EmailDraft.objects.filter(workflow_id__in=[workflow.pk, workflow.replay_of_id])
        }
        new, old = drafts.get(workflow.pk), drafts.get(workflow.replay_of_id)
        if new is None:
            raise CommandError(
                f"Workflow #{workflow_id} has not drafted yet (it is {workflow.status}); "
                "try again once it has."
            )
        if old is None:
            self.stdout.write(f"Workflow #{workflow.replay_of_id} never drafted; the new draft:")
        diff = list(
            difflib.unified_diff(
                _draft_lines(old),
                _draft_lines(new),
                f"#{workflow.replay_of_id}",
                f"#{workflow.pk}",
                lineterm="",
            )
        )
        self.stdout.write("\n".join(diff) if diff else "No differences: the drafts are identical.")


def _dashboard_base_url() -> str:
    """PUBLIC_BASE_URL when set; else the running `make run`'s address, found as
    send_test_webhook finds it (config.runstate.running_instance: the one on $PORT, else the
    only one); else DASHBOARD_BASE_URL (http://127.0.0.1:$PORT)."""
    if settings.PUBLIC_BASE_URL:
        return settings.DASHBOARD_BASE_URL
    try:
        instance = runstate.running_instance()
    except runstate.SeveralInstances:
        instance = {}
    return runstate.instance_url(instance) or settings.DASHBOARD_BASE_URL


def _draft_lines(draft: EmailDraft | None) -> list[str]:
    if draft is None:
        return []
    return [f"To: {draft.recipient}", f"Subject: {draft.subject}", "", *draft.body.splitlines()]
