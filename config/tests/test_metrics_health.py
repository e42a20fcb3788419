"""/metrics, /readyz with the broker down, and `check --deploy` under production settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from intake.models import FormSubmission
from workflows.models import Status, Workflow

REPO = Path(__file__).resolve().parents[2]


def make_workflow(status: str, *, minutes_ago: int) -> Workflow:
    submission = FormSubmission.objects.create(
        dedupe_key=uuid.uuid4().hex,
        shape="forms",
        signature_version="v3",
        raw_payload={},
        received_at=timezone.now() - timedelta(minutes=minutes_ago),
    )
    workflow = Workflow.objects.create(submission=submission, status=status)
    Workflow.objects.filter(pk=workflow.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return workflow


def sample(text: str, name: str) -> float:
    [line] = [ln for ln in text.splitlines() if ln.startswith(name + " ")]
    return float(line.split()[1])


@pytest.mark.django_db
def test_metrics_lists_every_series_and_the_queue_gauges():
    make_workflow(Status.PENDING, minutes_ago=10)
    make_workflow(Status.AWAITING_APPROVAL, minutes_ago=30)
    make_workflow(Status.AWAITING_APPROVAL, minutes_ago=5)

    response = Client().get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    for family in (
        "leadline_webhooks_total",
        "leadline_webhook_ingest_seconds",
        "leadline_step_duration_seconds",
        "leadline_step_retries_total",
        "leadline_workflow_failures_total",
        "leadline_gate_decisions_total",
        "leadline_email_sends_total",
    ):
        assert f"# TYPE {family.removesuffix('_total')}" in text, family
    assert sample(text, "leadline_approvals_waiting") == 2
    assert 29 * 60 < sample(text, "leadline_approvals_oldest_age_seconds") < 31 * 60
    assert 9 * 60 < sample(text, "leadline_pending_oldest_age_seconds") < 11 * 60


@pytest.mark.django_db
def test_metrics_refuses_remote_callers_without_the_token(settings):
    settings.METRICS_TOKEN = "metrics-token-0123456789"
    remote = Client(REMOTE_ADDR="203.0.113.9")
    assert remote.get("/metrics").status_code == 403
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    ok = remote.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789")
    assert ok.status_code == 200


@pytest.mark.django_db
def test_metrics_refuses_proxied_requests_even_from_loopback(settings):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 403


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_readyz_is_503_when_the_broker_is_unreachable():
    # Nothing listens on 6390: the app's broker is "down" without touching the shared Redis.
    code = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "r = Client().get('/readyz')\n"
        "print(r.status_code, r.json()['checks']['broker'])\n"
    )
    out = run_python(code, CELERY_BROKER_URL="redis://127.0.0.1:6390/0", LOG_LEVEL="error")
    assert out.returncode == 0, out.stderr
    status, reason = out.stdout.strip().splitlines()[-1].split(" ", 1)
    assert status == "503"
    assert reason.startswith("broker unavailable")


def test_check_deploy_is_clean_under_production_settings():
    database = os.environ.get("DATABASE_URL", "")
    if not database.startswith("postgres"):
        pytest.skip("production settings require a PostgreSQL DATABASE_URL")
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=REPO,
        env={
            # the browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process; a deployment doesn't
            **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
            "API_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "leadline.example.com",
            "DATABASE_URL": database,
            "MODE_DRAFT_ONLY": "true",
            "DEBUG": "",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "System check identified no issues" in out.stdout, out.stdout + out.stderr
