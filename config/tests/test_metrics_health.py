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


def metrics_access(settings, *, allowed: str, proxies: str = "", token: str = "") -> None:
    from config.security import parse_cidrs

    settings.METRICS_TOKEN = token
    settings.METRICS_ALLOWED_NETWORKS = parse_cidrs("METRICS_ALLOWED_CIDRS", allowed.split(","))
    settings.TRUSTED_PROXY_NETWORKS = parse_cidrs(
        "TRUSTED_PROXY_CIDRS", [p for p in proxies.split(",") if p]
    )


@pytest.mark.django_db
def test_metrics_answers_only_sources_in_metrics_allowed_cidrs(settings):
    metrics_access(settings, allowed="10.0.0.0/8")
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 403


@pytest.mark.django_db
def test_forwarded_headers_count_only_from_a_trusted_proxy(settings):
    """A same-host proxy relays from 127.0.0.1: its callers are judged by X-Forwarded-For,
    and a relay that says nothing (or only X-Real-IP / Forwarded) is not the proxy itself."""
    metrics_access(settings, allowed="127.0.0.1/32,10.0.0.0/8", proxies="127.0.0.1/32")
    proxy = Client(REMOTE_ADDR="127.0.0.1")
    assert proxy.get("/metrics", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 403
    assert proxy.get("/metrics", HTTP_X_REAL_IP="198.51.100.1").status_code == 403
    assert proxy.get("/metrics", HTTP_FORWARDED="for=198.51.100.1").status_code == 403
    assert proxy.get("/metrics").status_code == 403
    # a spoofed left-most entry does not help: the right-most untrusted hop is the caller
    spoofed = "10.0.0.5, 198.51.100.1"
    assert proxy.get("/metrics", HTTP_X_FORWARDED_FOR=spoofed).status_code == 403
    assert proxy.get("/metrics", HTTP_X_FORWARDED_FOR="10.0.0.5").status_code == 200
    # from an untrusted peer the header is ignored, whatever it claims
    outsider = Client(REMOTE_ADDR="203.0.113.9")
    assert outsider.get("/metrics", HTTP_X_FORWARDED_FOR="10.0.0.5").status_code == 403


@pytest.mark.django_db
def test_the_bearer_token_works_from_anywhere_and_a_wrong_one_never(settings):
    metrics_access(settings, allowed="127.0.0.1/32", token="metrics-token-0123456789")
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    far = Client(REMOTE_ADDR="203.0.113.9", HTTP_X_REAL_IP="127.0.0.1")
    ok = far.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789")
    assert ok.status_code == 200


def test_metrics_access_defaults_to_loopback_in_development_only():
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.METRICS_ALLOWED_CIDRS)"
    )
    dev = run_python(code, API_ENV="development", METRICS_ALLOWED_CIDRS="")
    assert dev.stdout.strip().splitlines()[-1] == "['127.0.0.1/32', '::1/128']", dev.stderr
    staging = run_python(code, API_ENV="staging", METRICS_ALLOWED_CIDRS="")
    assert staging.stdout.strip().splitlines()[-1] == "[]", staging.stderr
    bad = run_python(code, TRUSTED_PROXY_CIDRS="10.0.0.0/8,proxy.local")
    assert bad.returncode != 0 and "TRUSTED_PROXY_CIDRS: 'proxy.local'" in bad.stderr


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
