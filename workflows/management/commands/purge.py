"""Retention: delete submissions older than a cutoff, with their workflows, errors and drafts,
and the non-lead deliveries (kept events and refused bodies) older than it.
Each submission's dedupe key (a hash, nothing personal) is kept in ``purged_dedupe_keys``, so
a redelivery of it is still a duplicate.

    python manage.py purge --older-than 90d [--dry-run] [--purge-audit] [--batch-size 500]

Deletes in primary-key batches, each in its own transaction, so a large purge never holds
long locks. Audit rows are kept by default: they are detached from the workflow (its id stays
in ``object_id``) before the workflow goes; ``--purge-audit`` deletes them with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from dashboard.texts import time_text
from intake.models import FormSubmission, NonLeadDelivery, PurgedDeliveryKey
from outreach.models import EmailDraft
from workflows.models import AuditEvent, Workflow, WorkflowError

_DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str) -> timedelta:
    """'90d', '12h', '30m' → timedelta; anything else is an error naming the format."""
    match = _DURATION.match(text or "")
    if not match or int(match.group(1)) == 0:
        raise CommandError(f"--older-than {text!r}: use a positive number with d, h or m (90d).")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class Command(BaseCommand):
    help = "Delete submissions (and their workflows, errors, drafts) older than a cutoff."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", required=True, help="Age cutoff: 90d, 12h or 30m.")
        parser.add_argument("--dry-run", action="store_true", help="Count only; delete nothing.")
        audit = parser.add_mutually_exclusive_group()
        audit.add_argument(
            "--keep-audit",
            dest="keep_audit",
            action="store_true",
            default=True,
            help="Keep the purged workflows' audit rows, detached (default).",
        )
        audit.add_argument(
            "--purge-audit",
            dest="keep_audit",
            action="store_false",
            help="Delete the purged workflows' audit rows too.",
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, **options) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        cutoff = timezone.now() - parse_duration(options["older_than"])
        old = FormSubmission.objects.filter(received_at__lt=cutoff)
        # Non-lead deliveries (ignored, applied and refused events, refused bodies) keep raw
        # payloads too, which may name a person: the same retention applies.
        old_non_leads = NonLeadDelivery.objects.filter(received_at__lt=cutoff)
        if options["dry_run"]:
            counts = _counts(old.values("pk"))
            counts["non_lead_deliveries"] = old_non_leads.count()
            self.stdout.write(f"Dry run: would purge, received before {time_text(cutoff)}:")
            self._report(counts, options["keep_audit"])
            return
        totals = dict.fromkeys(_counts(FormSubmission.objects.none()), 0)
        for batch in _pk_batches(old, options["batch_size"]):
            for key, value in _purge_batch(batch, keep_audit=options["keep_audit"]).items():
                totals[key] += value
        totals["non_lead_deliveries"] = 0
        for batch in _pk_batches(old_non_leads, options["batch_size"]):
            deleted, _ = NonLeadDelivery.objects.filter(pk__in=batch).delete()
            totals["non_lead_deliveries"] += deleted
        self.stdout.write(f"Purged, received before {time_text(cutoff)}:")
        self._report(totals, options["keep_audit"])

    def _report(self, counts: dict[str, int], keep_audit: bool) -> None:
        for key, value in counts.items():
            if key == "audit_events":
                key += " (kept, detached)" if keep_audit else " (deleted)"
            self.stdout.write(f"  {key}: {value}")


def _pk_batches(queryset, size: int) -> Iterator[list[int]]:
    """The primary keys of ``queryset``'s rows, ``size`` at a time, read afresh for each batch
    (the caller deletes each batch before asking for the next)."""
    while batch := list(queryset.order_by("pk").values_list("pk", flat=True)[:size]):
        yield batch


def _counts(submissions) -> dict[str, int]:
    workflows = Workflow.objects.filter(submission__in=submissions)
    return {
        "submissions": FormSubmission.objects.filter(pk__in=submissions).count(),
        "workflows": workflows.count(),
        "workflow_errors": WorkflowError.objects.filter(workflow__in=workflows).count(),
        "email_drafts": EmailDraft.objects.filter(workflow__in=workflows).count(),
        "audit_events": AuditEvent.objects.filter(workflow__in=workflows).count(),
    }


def _purge_batch(submission_ids: list[int], *, keep_audit: bool) -> dict[str, int]:
    with transaction.atomic():
        counts = _counts(submission_ids)
        if keep_audit:
            # The FK cascades; detaching first keeps the history (object_id keeps the id).
            AuditEvent.objects.filter(workflow__submission_id__in=submission_ids).update(
                workflow=None
            )
        # Their dedupe keys stay behind: a captured v1/v2 request (no time in its signature)
        # must not come back as a new delivery once its submission is gone.
        now = timezone.now()
        keys = FormSubmission.objects.filter(pk__in=submission_ids).values_list(
            "dedupe_key", flat=True
        )
        PurgedDeliveryKey.objects.bulk_create(
            [PurgedDeliveryKey(dedupe_key=key, purged_at=now) for key in keys],
            ignore_conflicts=True,
        )
        FormSubmission.objects.filter(pk__in=submission_ids).delete()
    return counts
