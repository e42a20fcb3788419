"""The Forms poll: find every form submission whose webhook never reached Leadline.

HubSpot does not push form submissions through the Webhooks API, gives up on a webhook after
its retry window, and a workflow's "Send a webhook" can be misconfigured. So a beat job (and
``manage.py reconcile_forms``) reads each form's submissions from the Forms API, newest first,
until it reaches the form's high-water mark (the newest submission time a previous run read
completely). Every submission goes through the same storage path and identity as a webhook
(intake.services.submissions_ingest, trigger "reconcile"): one HubSpot already delivered is
"known" and stored no second time; the others become leads.

A Forms API submission names no contact, so before storing one the poll looks its contact up
by email (one throttled search), unless it joins a lead that already holds a contact key
(its conversion or form key is held by such a lead): those cost no call. With the contact id
the submission also claims ``contact:<id>``, so it and that contact's ``contact.creation``
event or workflow body make one lead and one workflow in whichever order they come. A miss
(search lags new contacts, or there is none yet) or a failed search stores the submission
without the contact key, as before: nothing is lost, and the pipeline's resolve step still
meets the contact's lead (a second workflow ends there as a recorded duplicate, before
drafting). docs/hubspot-app.md ("One lead, one workflow") states the rule.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from prometheus_client import Counter

from intake.identity import items_of_contacted_leads
from intake.models import SignatureVersion
from intake.payloads import NormalisedItem, PayloadError, parse_forms_api_submission
from intake.services import stored_dedupe_keys, submissions_ingest
from workflows.hubspot import forms
from workflows.hubspot.client import (
    HubSpotClient,
    HubSpotError,
    HubSpotPaused,
    kept_client,
)
from workflows.hubspot.models import FormHighWater, ReconcileRun
from workflows.models import Trigger

log = logging.getLogger("leadline.hubspot.reconcile")

SUBMISSIONS = Counter(
    "leadline_reconcile_submissions_total",
    "Form submissions the Forms poll read, by outcome (found, known, ingested, refused)",
    ["outcome"],
)
RUNS = Counter("leadline_reconcile_runs_total", "Forms poll runs, by outcome", ["outcome"])
CONTACT_LOOKUPS = Counter(
    "leadline_reconcile_contact_lookups_total",
    "Contact searches by email for polled submissions whose lead knows no contact, by outcome "
    "(found, missed, failed)",
    ["outcome"],
)


@dataclass
class FormResult:
    form_id: str
    found: int = 0
    known: int = 0
    ingested: int = 0
    refused: int = 0
    #: Contact searches (submissions whose lead knows no contact yet): found, none, an error.
    contact_found: int = 0
    contact_missed: int = 0
    search_failed: int = 0
    newest_ms: int | None = None


@dataclass
class ReconcileResult:
    #: The hubspot_reconcile_run row; None for a dry run (it records nothing).
    run_id: int | None
    dry_run: bool
    forms: list[FormResult] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.forms)


class ReconcileFailed(Exception):
    """The run stopped on an error; it is recorded, logged and alerted (a dry run's is only
    logged)."""


def forms_reconcile(
    *,
    form_ids: list[str] | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
    client: HubSpotClient | None = None,
) -> ReconcileResult:
    """Read the configured forms' submissions back to each form's high-water mark (or
    `since`) and ingest every one not yet stored. Idempotent: a second run ingests nothing.

    `form_ids` defaults to HUBSPOT_FORM_IDS, else every form of the account. A dry run
    counts and records nothing: no submission, no mark, no run row, no metric, no alert.
    Raises ReconcileFailed (after recording the run and alerting operators, unless it is a dry
    run) when HubSpot or the database fails; a daily-limit halt is recorded, not alerted.
    """
    if dry_run:
        return _dry_run(form_ids, since, client or kept_client())
    run = ReconcileRun.objects.create(started_at=timezone.now(), dry_run=dry_run)
    result = ReconcileResult(run_id=run.pk, dry_run=dry_run)
    client = client or kept_client()
    try:
        _poll(result, client, form_ids, since)
    except HubSpotPaused as paused:
        _finish(run, result, ok=False, error=f"paused: {paused}")
        RUNS.labels("paused").inc()
        raise ReconcileFailed(str(paused)) from paused
    except Exception as error:
        _finish(run, result, ok=False, error=f"{type(error).__name__}: {error}")
        RUNS.labels("failed").inc()
        log.error("Forms reconciliation failed", extra={"run_id": run.pk, "error": str(error)})
        _alert_failure(run, error)
        raise ReconcileFailed(str(error)) from error
    _finish(run, result, ok=True)
    RUNS.labels("ok").inc()
    log.info(
        "Forms reconciliation finished",
        extra={
            "run_id": run.pk,
            "dry_run": dry_run,
            "forms": len(result.forms),
            "found": result.total("found"),
            "known": result.total("known"),
            "ingested": result.total("ingested"),
            "refused": result.total("refused"),
            "contact_found": result.total("contact_found"),
            "contact_missed": result.total("contact_missed"),
            "search_failed": result.total("search_failed"),
        },
    )
    return result


def _dry_run(
    form_ids: list[str] | None, since: datetime | None, client: HubSpotClient | None
) -> ReconcileResult:
    """What a run would find and ingest, recording nothing and alerting no one."""
    result = ReconcileResult(run_id=None, dry_run=True)
    try:
        _poll(result, client, form_ids, since)
    except ReconcileFailed:
        raise
    except Exception as error:
        log.warning("Forms reconciliation dry run failed", extra={"error": str(error)})
        raise ReconcileFailed(str(error)) from error
    return result


def _poll(
    result: ReconcileResult,
    client: HubSpotClient | None,
    form_ids: list[str] | None,
    since: datetime | None,
) -> None:
    """Read each wanted form into ``result.forms`` (ingesting unless ``result.dry_run``)."""
    if client is None:
        raise ReconcileFailed("HUBSPOT_ACCESS_TOKEN is not set: nothing to poll")
    portal_id = forms.account_portal_id(client, remember=not result.dry_run)
    wanted = form_ids or settings.HUBSPOT_FORM_IDS or [f["id"] for f in forms.iter_forms(client)]
    for form_id in wanted:
        result.forms.append(_reconcile_form(client, portal_id, form_id, since, result.dry_run))


def _reconcile_form(
    client: HubSpotClient, portal_id: int, form_id: str, since: datetime | None, dry_run: bool
) -> FormResult:
    outcome = FormResult(form_id=form_id)
    mark = (
        FormHighWater.objects.filter(form_id=form_id)
        .values_list("submitted_at_ms", flat=True)
        .first()
    )
    if since is not None:
        stop_ms = int(since.timestamp() * 1000)
    elif mark is not None:
        stop_ms = mark
    else:
        first = timezone.now() - timedelta(days=settings.HUBSPOT_RECONCILE_FIRST_DAYS)
        stop_ms = int(first.timestamp() * 1000)
    items = []
    for submission in forms.iter_submissions(client, form_id):
        submitted_ms = int(submission.get("submittedAt") or 0)
        # Newest first: everything from here on was read by an earlier run. A submission at
        # exactly the mark is read again (same millisecond, maybe not seen) and found known.
        if submitted_ms < stop_ms:
            break
        outcome.found += 1
        outcome.newest_ms = max(outcome.newest_ms or 0, submitted_ms)
        try:
            items.append(
                parse_forms_api_submission(submission, portal_id=portal_id, form_id=form_id)
            )
        except PayloadError as error:
            outcome.refused += 1
            log.warning(
                "Forms poll refused a submission",
                extra={"form_id": form_id, "reason": str(error)},
            )
    stored = stored_dedupe_keys([i.dedupe_key for i in items])  # purged ones included
    new = [i for i in items if i.dedupe_key not in stored]
    if new and not dry_run:
        new = _with_contacts(client, new, outcome)
        ingest = submissions_ingest(
            items=new,
            signature_version=SignatureVersion.POLL,
            received_at=timezone.now(),
            trigger=Trigger.RECONCILE,
        )
        outcome.ingested = len(ingest.workflow_ids)
    elif dry_run:
        outcome.ingested = len(new)
    outcome.known = outcome.found - outcome.refused - outcome.ingested
    if not dry_run and outcome.newest_ms is not None and (mark or 0) < outcome.newest_ms:
        FormHighWater.objects.update_or_create(
            form_id=form_id, defaults={"submitted_at_ms": outcome.newest_ms}
        )
    for name in ("found", "known", "ingested", "refused"):
        if not dry_run:
            SUBMISSIONS.labels(name).inc(getattr(outcome, name))
    for name, label in (
        ("contact_found", "found"),
        ("contact_missed", "missed"),
        ("search_failed", "failed"),
    ):
        CONTACT_LOOKUPS.labels(label).inc(getattr(outcome, name))
    return outcome


def _with_contacts(
    client: HubSpotClient, items: list[NormalisedItem], outcome: FormResult
) -> list[NormalisedItem]:
    """The items, each given the id of its contact (found by email) so that it claims the
    contact's key, except those that join a lead which already holds a contact key: they
    cost no search (intake.identity.items_of_contacted_leads). A miss or an error leaves the
    item as it is: it is stored without the contact key, never dropped. After a daily-limit
    halt no further search is tried (each would fail at once)."""
    known = items_of_contacted_leads(items)
    found: dict[str, str] = {}  # email -> contact id: one search per person and run
    halted = False
    result = []
    for item in items:
        if item.dedupe_key in known or not item.email or item.email_error:
            result.append(item)
            continue
        contact_id = found.get(item.email)
        if contact_id is None and halted:
            outcome.search_failed += 1
        elif contact_id is None:
            try:
                contact = client.search_contact_by_email(item.email, properties=("email",))
            except HubSpotError as error:
                halted = isinstance(error, HubSpotPaused)
                outcome.search_failed += 1
                log.warning(
                    "Forms poll could not look a contact up; stored without its contact key",
                    extra={
                        "form_id": outcome.form_id,
                        "status": error.status,
                        "category": error.category,
                    },
                )
            else:
                if contact and contact.get("id"):
                    outcome.contact_found += 1
                    contact_id = found[item.email] = str(contact["id"])
                else:
                    outcome.contact_missed += 1
        result.append(replace(item, contact_id=contact_id) if contact_id else item)
    return result


def _finish(run: ReconcileRun, result: ReconcileResult, *, ok: bool, error: str = "") -> None:
    run.finished_at = timezone.now()
    run.ok = ok
    run.error = error[:2000]
    run.forms = len(result.forms)
    run.found = result.total("found")
    run.known = result.total("known")
    run.ingested = result.total("ingested")
    run.save()


def _alert_failure(run: ReconcileRun, error: BaseException) -> None:
    from workflows.alerts import send_operator_alert

    send_operator_alert(
        subject=f"Leadline: Forms reconciliation run #{run.pk} failed",
        text=(
            f"Leadline: Forms reconciliation run #{run.pk} failed\n"
            f"Error: {type(error).__name__}: {str(error)[:500]}\n"
            "Leads whose webhook never arrived are not being found until it runs again. "
            "See docs/operations.md (reconcile_forms)."
        ),
    )


def last_successful_run() -> ReconcileRun | None:
    """The newest run that finished without error (the dashboard shows it)."""
    return ReconcileRun.objects.filter(ok=True).order_by("-started_at").first()
