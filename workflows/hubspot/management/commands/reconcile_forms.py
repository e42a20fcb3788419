import argparse
from datetime import UTC, datetime, time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_date, parse_datetime

from config import runstate
from workflows.hubspot.client import HubSpotClient, client_from_settings
from workflows.hubspot.reconcile import ReconcileFailed, forms_reconcile


def _since(value: str) -> datetime:
    """An argparse ``type``: a bad value is a one-line usage error (exit 2), not a traceback."""
    moment = parse_datetime(value)
    if moment is None and (day := parse_date(value)) is not None:
        moment = datetime.combine(day, time.min)
    if moment is None:
        raise argparse.ArgumentTypeError(f"{value!r}: give a date (2026-11-29) or an ISO datetime")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Read HubSpot form submissions (Forms API) back to each form's high-water mark and "
        "ingest every one Leadline has not stored (a webhook that never arrived)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--form", action="append", dest="forms", metavar="GUID", help="only this form"
        )
        parser.add_argument(
            "--since", type=_since, help="read back to this date/time instead of the mark"
        )
        parser.add_argument("--dry-run", action="store_true", help="count, store nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = forms_reconcile(
                form_ids=options["forms"],
                since=options["since"],
                dry_run=options["dry_run"],
                client=self._client(),
            )
        except ReconcileFailed as failed:
            raise CommandError(f"reconciliation failed: {failed}") from failed
        for form in result.forms:
            self.stdout.write(
                f"{form.form_id}: found {form.found}, already known {form.known}, "
                f"{'would ingest' if result.dry_run else 'ingested'} {form.ingested}, "
                f"refused {form.refused}"
                + (
                    f"; contact searches: found {form.contact_found}, missed "
                    f"{form.contact_missed}, failed {form.search_failed}"
                    if form.contact_found + form.contact_missed + form.search_failed
                    else ""
                )
            )
        self.stdout.write(
            ("dry run, nothing recorded" if result.dry_run else f"run #{result.run_id}") + ": "
            f"found {result.total('found')}, already known {result.total('known')}, "
            f"{'would ingest' if result.dry_run else 'ingested'} {result.total('ingested')}"
        )

    def _client(self) -> HubSpotClient | None:
        """None (HubSpot as configured) when HUBSPOT_ACCESS_TOKEN is set; else the local sandbox of
        the running `make run` (found as send_test_webhook finds it), said on one line; else a
        CommandError saying what to set. Nothing is recorded or alerted for a missing token
        here: that is a shell's configuration, not a failed run."""
        if settings.HUBSPOT_ACCESS_TOKEN:
            return None
        try:
            instance = runstate.running_instance()
        except runstate.SeveralInstances as several:
            raise CommandError(f"HUBSPOT_ACCESS_TOKEN is not set, and {several}") from None
        sandbox = runstate.local_sandbox(instance.get("sandbox_url", ""))
        if not sandbox:
            raise CommandError(
                "HUBSPOT_ACCESS_TOKEN is not set, and no running `make run` with a local HubSpot "
                "sandbox was found: set HUBSPOT_ACCESS_TOKEN (and HUBSPOT_API_BASE_URL for "
                "another API than HubSpot's) in the environment or .env, or start `make run` "
                "without a token (PORT=<its port> when several run)."
            )
        self.stdout.write(
            f"HUBSPOT_ACCESS_TOKEN is not set: polling the local HubSpot sandbox of the running "
            f"`make run` on port {instance['port']} ({sandbox})."
        )
        return client_from_settings(base_url=sandbox, token=runstate.SANDBOX_TOKEN)
