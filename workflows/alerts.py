"""Operator alerts: a workflow failed, a lead waits for approval past the speed-to-lead target,
or the outbox relay falls behind (its oldest unpublished workflow is older than
OUTBOX_LAG_ALERT_SECONDS: the relay is down, or cannot reach the broker).

Run every minute by beat (``workflows.send_alerts``). Each (workflow, condition) is alerted at
most once: an ``alert.sent`` audit row is written and committed under a row lock on the
workflow *before* anything is sent, so two concurrent runs cannot both send, and a run that
dies mid-send never repeats it. They go to ALERT_EMAILS and/or ALERT_WEBHOOK_URL, and
nowhere else.

Alerts are inert (issue #14): they carry the workflow id, its status, a count of minutes and
the reason *class* (step, exception class, permanent or exhausted) and a dashboard link, never
text a lead supplied: ``last_error`` can quote an invalid email value verbatim, so it is not
used. The webhook text is escaped for Slack mrkdwn (``&``, ``<``, ``>``), so even a value that
slipped in could not ping a channel (``<!channel>``) or render a disguised link.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from workflows import audit
from workflows.models import AuditEvent, Status, Workflow, WorkflowError

log = logging.getLogger("leadline.alerts")

ALERT_SENT = "alert.sent"
FAILED = "failed"
APPROVAL_OVERDUE = "approval_overdue"
OUTBOX_LAG = "outbox_lag"
#: One relay-lag alert per this long, however long the relay stays behind.
OUTBOX_LAG_ALERT_EVERY = timedelta(minutes=15)
TITLES = {
    FAILED: "failed",
    APPROVAL_OVERDUE: "is waiting for approval",
    OUTBOX_LAG: "is waiting to be published: the outbox relay is behind",
}
BATCH = 100
WEBHOOK_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class Alert:
    workflow_id: int
    condition: str
    status: str
    reason: str

    @property
    def link(self) -> str:
        return f"{settings.DASHBOARD_BASE_URL}/dashboard/workflows/{self.workflow_id}/"

    @property
    def text(self) -> str:
        """Plain text, for e-mail."""
        title = TITLES[self.condition]
        return (
            f"Leadline: workflow #{self.workflow_id} {title}\n"
            f"Status: {self.status}\nReason: {self.reason}\n{self.link}"
        )

    @property
    def mrkdwn(self) -> str:
        """The same text escaped for Slack mrkdwn (the webhook's format)."""
        return escape_mrkdwn(self.text)


def escape_mrkdwn(text: str) -> str:
    """Slack's control characters as entities: ``<!channel>`` and ``<url|label>`` stay text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def failure_class(step: str, exception_type: str, retryable: bool) -> str:
    """``resolve_contact: HubSpotError (permanent)``: names only, no message text."""
    how = "retries exhausted" if retryable else "permanent"
    return f"{step or 'unknown step'}: {exception_type} ({how})"


def alerting_configured() -> bool:
    return bool(settings.ALERT_EMAILS or settings.ALERT_WEBHOOK_URL)


def send_alerts(*, now: datetime | None = None) -> dict[str, int]:
    """Alert on recent failures and overdue approvals not alerted before; returns counts.

    MAY send email and POST to the configured webhook; at most once per workflow and condition.
    """
    if not alerting_configured():
        return {FAILED: 0, APPROVAL_OVERDUE: 0, OUTBOX_LAG: 0}
    now = now or timezone.now()
    sent = {FAILED: 0, APPROVAL_OVERDUE: 0, OUTBOX_LAG: 0}
    for alert in _candidates(now):
        if _claim(alert):
            _deliver(alert)
            sent[alert.condition] += 1
    return sent


def _candidates(now: datetime) -> list[Alert]:
    target = settings.SPEED_TO_LEAD_TARGET_MINUTES
    failed = (
        Workflow.objects.filter(
            status=Status.FAILED,
            created_at__gte=now - timedelta(hours=settings.ALERT_LOOKBACK_HOURS),
        )
        .order_by("-created_at")
        .values_list("pk", "status", "current_step")[:BATCH]
    )
    overdue = (
        Workflow.objects.filter(
            status=Status.AWAITING_APPROVAL,
            submission__received_at__lt=now - timedelta(minutes=target),
        )
        .order_by("created_at")
        .values_list("pk", "status", "submission__received_at")[:BATCH]
    )
    failed = list(failed)
    last_errors = {
        workflow_id: failure_class(step, exception_type, retryable)
        for workflow_id, step, exception_type, retryable in WorkflowError.objects.filter(
            workflow_id__in=[pk for pk, _, _ in failed]
        )
        .order_by("workflow_id", "created_at", "pk")
        .values_list("workflow_id", "step", "exception_type", "retryable")
    }
    alerts = [
        Alert(pk, FAILED, status, last_errors.get(pk) or f"{step or 'unknown step'}: failed")
        for pk, status, step in failed
    ]
    for pk, status, received_at in overdue:
        minutes = int((now - received_at).total_seconds() // 60)
        reason = f"lead waiting {minutes} min for approval (target {target} min)"
        alerts.append(Alert(pk, APPROVAL_OVERDUE, status, reason))
    lag = _outbox_lag_alert(now)
    if lag is not None:
        alerts.append(lag)
    done = set(
        AuditEvent.objects.filter(
            action=ALERT_SENT, workflow_id__in=[a.workflow_id for a in alerts]
        ).values_list("workflow_id", "details__condition")
    )
    return [a for a in alerts if (a.workflow_id, a.condition) not in done]


def _outbox_lag_alert(now: datetime) -> Alert | None:
    """The oldest unpublished workflow, when it is older than OUTBOX_LAG_ALERT_SECONDS and no
    relay-lag alert went out in the last OUTBOX_LAG_ALERT_EVERY."""
    from workflows.relay import unpublished  # relay imports services, which import this app

    threshold = settings.OUTBOX_LAG_ALERT_SECONDS
    oldest = (
        unpublished()
        .filter(created_at__lt=now - timedelta(seconds=threshold))
        .order_by("created_at")
        .values_list("pk", "created_at")
        .first()
    )
    if oldest is None:
        return None
    recent = AuditEvent.objects.filter(
        action=ALERT_SENT,
        details__condition=OUTBOX_LAG,
        created_at__gte=now - OUTBOX_LAG_ALERT_EVERY,
    )
    if recent.exists():
        return None
    pk, created_at = oldest
    seconds = int((now - created_at).total_seconds())
    reason = f"not published for {seconds} s (threshold {threshold} s): is the relay running?"
    return Alert(pk, OUTBOX_LAG, Status.PENDING, reason)


def _claim(alert: Alert) -> bool:
    """Commit the ``alert.sent`` row unless another run already did; True if ours."""
    with transaction.atomic():
        # The row lock serialises concurrent alert runs for this workflow on PostgreSQL
        # (SQLite's IMMEDIATE transactions serialise all writers already).
        locked = Workflow.objects.select_for_update().filter(pk=alert.workflow_id).exists()
        already = AuditEvent.objects.filter(
            action=ALERT_SENT, workflow_id=alert.workflow_id, details__condition=alert.condition
        ).exists()
        if not locked or already:
            return False
        audit.record(
            action=ALERT_SENT,
            object_type="workflow",
            object_id=alert.workflow_id,
            workflow_id=alert.workflow_id,
            reason=alert.reason[:500],
            details={"condition": alert.condition, "status": alert.status},
        )
    return True


def send_operator_alert(*, subject: str, text: str) -> list[str]:
    """Send an alert that is not about one workflow (e.g. a failed Forms poll) through the
    same channels; returns where it went. MAY send email and POST to the alert webhook."""
    return _send(subject, text, {"alert": subject})


def _send(subject: str, text: str, fields: dict[str, object]) -> list[str]:
    """Deliver to ALERT_EMAILS and ALERT_WEBHOOK_URL; failures are logged, never retried."""
    delivered = []
    if settings.ALERT_EMAILS:
        try:
            send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, settings.ALERT_EMAILS)
            delivered.append("email")
        except Exception as exc:
            log.error("Alert email failed", extra={**fields, "error": type(exc).__name__})
    if settings.ALERT_WEBHOOK_URL:
        try:
            response = requests.post(
                settings.ALERT_WEBHOOK_URL,
                json={"text": escape_mrkdwn(text)},
                timeout=WEBHOOK_TIMEOUT_SECONDS,
                allow_redirects=False,
            )
            response.raise_for_status()
            delivered.append("webhook")
        except requests.RequestException as exc:
            log.error("Alert webhook failed", extra={**fields, "error": type(exc).__name__})
    return delivered


def _deliver(alert: Alert) -> None:
    """Send the claimed alert; a delivery failure is logged, never retried (at most once)."""
    subject = alert.text.splitlines()[0]
    fields = {"workflow_id": alert.workflow_id, "condition": alert.condition}
    delivered = _send(subject, alert.text, fields)
    if delivered:
        log.warning(
            "Alert sent",
            extra={
                "workflow_id": alert.workflow_id,
                "condition": alert.condition,
                "via": delivered,
            },
        )
