import argparse
from datetime import UTC, datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_date, parse_datetime

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
                form_ids=options["forms"], since=options["since"], dry_run=options["dry_run"]
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
            f"run #{result.run_id}{' (dry run)' if result.dry_run else ''}: "
            f"found {result.total('found')}, already known {result.total('known')}, "
            f"{'would ingest' if result.dry_run else 'ingested'} {result.total('ingested')}"
        )
