"""Operator alerts: once per workflow and condition, only to configured destinations."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from intake.models import FormSubmission
from workflows.alerts import ALERT_SENT, escape_mrkdwn, send_alerts
from workflows.models import AuditEvent, Status, Workflow, WorkflowError

pytestmark = pytest.mark.django_db


def make_workflow(
    status: str,
    *,
    received_minutes_ago: int = 1,
    error: str = "",
    exception_type: str = "",
    email: str = "lead@example.com",
    email_error: str = "",
) -> Workflow:
    submission = FormSubmission.objects.create(
        dedupe_key=uuid.uuid4().hex,
        shape="forms",
        signature_version="v3",
        raw_payload={},
        email=email,
        email_error=email_error,
        message="Please call me about pricing, my budget is private",
        received_at=timezone.now() - timedelta(minutes=received_minutes_ago),
    )
    workflow = Workflow.objects.create(
        submission=submission, status=status, last_error=error, current_step="resolve_contact"
    )
    if exception_type:
        WorkflowError.objects.create(
            workflow=workflow,
            step="resolve_contact",
            attempt=1,
            exception_type=exception_type,
            message=error,
            retryable=False,
        )
    return workflow


@pytest.fixture
def alert_settings(settings):
    settings.ALERT_EMAILS = ["ops@example.com"]
    settings.ALERT_WEBHOOK_URL = ""
    settings.SPEED_TO_LEAD_TARGET_MINUTES = 15
    settings.DASHBOARD_BASE_URL = "https://leadline.example.com"
    return settings


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook_receiver():
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver.received
    server.shutdown()
    server.server_close()


def test_failed_workflow_alerts_once(alert_settings):
    workflow = make_workflow(
        Status.FAILED,
        error="resolve_contact failed (permanent): 404",
        exception_type="HubSpotError",
    )

    assert send_alerts() == {"failed": 1, "approval_overdue": 0, "outbox_lag": 0}
    assert send_alerts() == {"failed": 0, "approval_overdue": 0, "outbox_lag": 0}

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.com"]
    assert f"#{workflow.pk} failed" in message.subject
    assert "Reason: resolve_contact: HubSpotError (permanent)" in message.body
    assert f"https://leadline.example.com/dashboard/workflows/{workflow.pk}/" in message.body
    assert "budget is private" not in message.body
    event = AuditEvent.objects.get(action=ALERT_SENT, workflow=workflow)
    assert event.details["condition"] == "failed"


def test_overdue_approval_alerts_and_a_fresh_one_does_not(alert_settings):
    overdue = make_workflow(Status.AWAITING_APPROVAL, received_minutes_ago=40)
    make_workflow(Status.AWAITING_APPROVAL, received_minutes_ago=5)

    assert send_alerts() == {"failed": 0, "approval_overdue": 1, "outbox_lag": 0}

    assert len(mail.outbox) == 1
    assert f"#{overdue.pk} is waiting for approval" in mail.outbox[0].subject
    assert "waiting 40 min for approval (target 15 min)" in mail.outbox[0].body


def test_workflow_that_fails_after_an_overdue_alert_alerts_again_for_the_failure(alert_settings):
    workflow = make_workflow(Status.AWAITING_APPROVAL, received_minutes_ago=40)
    send_alerts()
    Workflow.objects.filter(pk=workflow.pk).update(status=Status.FAILED)

    assert send_alerts() == {"failed": 1, "approval_overdue": 0, "outbox_lag": 0}
    assert len(mail.outbox) == 2


def test_nothing_configured_sends_nothing_and_records_nothing(settings):
    settings.ALERT_EMAILS, settings.ALERT_WEBHOOK_URL = [], ""
    make_workflow(Status.FAILED)

    assert send_alerts() == {"failed": 0, "approval_overdue": 0, "outbox_lag": 0}
    assert mail.outbox == []
    assert not AuditEvent.objects.filter(action=ALERT_SENT).exists()


def test_webhook_receives_the_alert_text_once(alert_settings, webhook_receiver):
    url, received = webhook_receiver
    alert_settings.ALERT_EMAILS = []
    alert_settings.ALERT_WEBHOOK_URL = url
    workflow = make_workflow(Status.FAILED, error="create_crm_task failed: 403")

    send_alerts()
    send_alerts()

    assert len(received) == 1
    assert set(received[0]) == {"text"}
    assert f"workflow #{workflow.pk} failed" in received[0]["text"]
    assert "budget is private" not in received[0]["text"]
    assert mail.outbox == []


def test_email_only_configuration_makes_no_http_request(alert_settings, webhook_receiver):
    _, received = webhook_receiver
    make_workflow(Status.FAILED)

    send_alerts()

    assert received == []
    assert len(mail.outbox) == 1


def test_unreachable_webhook_is_not_retried(alert_settings):
    # At most once: the claim is committed before delivery, so a failed POST is logged only.
    alert_settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:1/hook"
    make_workflow(Status.FAILED)

    assert send_alerts()["failed"] == 1
    assert send_alerts()["failed"] == 0


HOSTILE = "<!channel> <https://evil.example/sso|Approve in Leadline>"


def test_a_hostile_email_value_reaches_slack_inert_and_not_at_all(alert_settings, webhook_receiver):
    """Issue #14: an invalid email value became the failure reason and pinged the channel."""
    url, received = webhook_receiver
    alert_settings.ALERT_WEBHOOK_URL = url
    alert_settings.DASHBOARD_BASE_URL = "https://leadline.example.com/?a=1&b=<2>"
    workflow = make_workflow(
        Status.FAILED,
        email="",
        email_error=f"not an email address: {HOSTILE!r}",
        error=f"resolve_contact failed (permanent error): cannot look the lead up: {HOSTILE}",
        exception_type="PermanentStepError",
    )

    assert send_alerts()["failed"] == 1

    [body] = received
    text = body["text"]
    assert f"workflow #{workflow.pk} failed" in text
    assert "Reason: resolve_contact: PermanentStepError (permanent)" in text
    # no lead text at all, and no Slack control sequence
    for fragment in ("evil.example", "Approve in Leadline", "<!channel>", "budget", "lead@"):
        assert fragment not in text
    assert "<" not in text and ">" not in text
    # what is interpolated is escaped for mrkdwn (here the configured link's & < >)
    assert "/?a=1&amp;b=&lt;2&gt;" in text
    [message] = mail.outbox
    assert "evil.example" not in message.body and "evil.example" not in message.subject
    event = AuditEvent.objects.get(action=ALERT_SENT, workflow=workflow)
    assert "evil.example" not in event.reason


def test_escape_mrkdwn_neutralises_slack_control_sequences():
    assert escape_mrkdwn(HOSTILE) == (
        "&lt;!channel&gt; &lt;https://evil.example/sso|Approve in Leadline&gt;"
    )
    assert escape_mrkdwn("a & b") == "a &amp; b"


def test_a_failure_without_a_recorded_error_names_the_step_only(alert_settings):
    make_workflow(Status.FAILED, error=f"cannot look the lead up: {HOSTILE}")
    send_alerts()
    [message] = mail.outbox
    assert "Reason: resolve_contact: failed" in message.body
    assert "evil.example" not in message.body
