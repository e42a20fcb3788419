"""JSON log lines: context from requests and tasks, untrusted text cannot forge lines,
secrets and email bodies never reach the log."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.test import Client

from config.logging import (
    JsonFormatter,
    RedactingFilter,
    bind,
    connect_celery_signals,
    logging_config,
    reset,
)


@pytest.fixture
def capture():
    """The lines one handler configured like production's would write."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("leadline")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_each_line_is_one_json_object_with_the_core_fields(capture):
    logging.getLogger("leadline.test").info(
        "Step finished", extra={"workflow_id": 7, "step": "draft_email", "duration_ms": 12}
    )
    [line] = capture()
    assert {"ts", "level", "logger", "message"} <= set(line)
    assert (line["level"], line["logger"], line["message"]) == (
        "INFO",
        "leadline.test",
        "Step finished",
    )
    assert (line["workflow_id"], line["step"], line["duration_ms"]) == (7, "draft_email", 12)


def test_untrusted_newlines_cannot_forge_a_line(capture):
    forged = 'x"}\n{"level": "ERROR", "message": "forged'
    logging.getLogger("leadline.test").warning("Webhook refused: %s", forged, extra={"v": forged})
    lines = capture()
    assert len(lines) == 1
    assert lines[0]["level"] == "WARNING"
    assert lines[0]["message"] == f"Webhook refused: {forged}"


def test_secrets_tokens_and_email_bodies_are_redacted(capture, settings):
    settings.HUBSPOT_CLIENT_SECRET = "client-secret-value-1234"
    settings.LLM_API_KEY = "sk-model-key-5678"
    logging.getLogger("leadline.test").info(
        "calling with Bearer pat-na1-abcdef and client-secret-value-1234 (sk-model-key-5678)",
        extra={
            "headers": {"Authorization": "Bearer pat-na1-abcdef", "Accept": "json"},
            "password": "hunter22",
            "body": "Dear lead, our prices are…",
            "properties": {"hs_task_body": "Call the lead about …"},
            "note": "y" * 5000,
        },
    )
    [line] = capture()
    text = json.dumps(line)
    secrets = ("pat-na1-abcdef", "client-secret-value-1234", "sk-model-key-5678", "hunter22")
    for secret in (*secrets, "prices", "Call the"):
        assert secret not in text
    assert line["headers"] == {"Authorization": "[redacted]", "Accept": "json"}
    assert len(line["note"]) < 2100


def test_bound_context_is_on_every_line_until_reset(capture):
    token = bind(task_id="abc", workflow_id=42)
    logging.getLogger("leadline.test").info("inside")
    reset(token)
    logging.getLogger("leadline.test").info("outside")
    inside, outside = capture()
    assert (inside["task_id"], inside["workflow_id"]) == ("abc", 42)
    assert "task_id" not in outside


def test_request_lines_carry_the_request_id_which_is_returned(capture, settings):
    settings.HUBSPOT_CLIENT_SECRET = ""  # the webhook refuses (503) and logs why
    response = Client().post(
        "/api/webhooks/hubspot/forms",
        data="{}",
        content_type="application/json",
        HTTP_X_REQUEST_ID="req-12345678",
    )
    assert response.status_code == 503
    assert response["X-Request-ID"] == "req-12345678"
    [line] = capture()
    assert (line["message"], line["request_id"]) == ("Webhook refused", "req-12345678")


def test_insane_request_ids_are_replaced():
    response = Client().get("/healthz", HTTP_X_REQUEST_ID='bad\n{"id"}')
    assert response["X-Request-ID"] != 'bad\n{"id"}'
    assert len(response["X-Request-ID"]) == 32


def test_celery_task_signals_bind_task_and_workflow(capture):
    from celery.signals import task_postrun, task_prerun

    connect_celery_signals()
    task_prerun.send(sender=None, task_id="t-1", task=None, args=(99,), kwargs={})
    logging.getLogger("leadline.test").info("Retrying workflow 99")
    task_postrun.send(sender=None, task_id="t-1", task=None, args=(99,), kwargs={})
    logging.getLogger("leadline.test").info("after")
    during, after = capture()
    assert (during["task_id"], during["workflow_id"]) == ("t-1", 99)
    assert "task_id" not in after


def test_file_handler_is_watched_and_its_directory_created(tmp_path):
    config = logging_config("INFO", tmp_path / "logs" / "app.log")
    assert config["handlers"]["file"]["class"] == "logging.handlers.WatchedFileHandler"
    assert (tmp_path / "logs").is_dir()
    assert {h["formatter"] for h in config["handlers"].values()} == {"json"}


def test_gunicorn_reads_log_level_as_strictly_as_settings(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import config.gunicorn

    monkeypatch.setenv("LOG_LEVEL", "Warning")
    assert importlib.reload(config.gunicorn).logconfig_dict["root"]["level"] == "WARNING"
    monkeypatch.setenv("LOG_LEVEL", "verbose")
    with pytest.raises(ImproperlyConfigured, match="LOG_LEVEL='verbose' must be one of"):
        importlib.reload(config.gunicorn)


# --- issue #14: lead PII out of the logs -----------------------------------------------------


def test_emails_phones_and_hubspot_tokens_are_masked_in_messages_and_extra_fields(capture):
    token = "pat-na1-12345678-abcd-4bcd-8bcd-123456789abc"
    logging.getLogger("leadline.test").warning(
        "Cannot reach jane.doe@othercorp.com at +1 415 555 0123 with %s",
        token,
        extra={
            "recipient": "jane.doe@othercorp.com",
            "contact": {"phone": "(415) 555-0123", "emails": ["bob@example.org"]},
            "url": "https://api.hubapi.com/crm/v3/objects?hapikey=abc123def&limit=1",
            "started_at": "2026-12-01T04:24:03.405+00:00",
            "contact_id": "12345678901",
        },
    )
    [line] = capture()
    assert line["message"] == "Cannot reach j***@othercorp.com at ***23 with [redacted]"
    assert line["recipient"] == "j***@othercorp.com"
    assert line["contact"] == {"phone": "***23", "emails": ["b***@example.org"]}
    assert "abc123def" not in line["url"]
    # timestamps and HubSpot ids are not phone numbers
    assert line["started_at"] == "2026-12-01T04:24:03.405+00:00"
    assert line["contact_id"] == "12345678901"


def test_bound_context_and_tracebacks_are_masked_too(capture):
    token = bind(lead="jane.doe@othercorp.com")
    try:
        raise ValueError("bad recipient jane.doe@othercorp.com")
    except ValueError:
        logging.getLogger("leadline.test").exception("Failed")
    finally:
        reset(token)
    [line] = capture()
    assert line["lead"] == "j***@othercorp.com"
    assert "jane.doe" not in line["exc"] and "j***@othercorp.com" in line["exc"]


def test_the_gate_reason_as_logged_names_the_rule_not_the_address(capture):
    from outreach.gate import SendMode, decide

    mode = SendMode("production", False, False, ("@company.com",))
    reason = decide(mode=mode, recipient="jane.doe@othercorp.com", approved=True).reason
    logging.getLogger("leadline.test").info("Step finished", extra={"note": f"block: {reason}"})
    [line] = capture()
    assert line["note"] == "block: recipient is not on SEND_EMAIL_ALLOWLIST"
