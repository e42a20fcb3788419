"""The seed demo, run for real: settings parse the environment in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from workflows.models import AuditEvent

REPO = Path(__file__).resolve().parents[2]
_SEND_VARS = {"API_ENV", "MODE_DRAFT_ONLY", "ALLOW_AUTO_SEND", "SEND_EMAIL_ALLOWLIST"}
PRODUCTION = {
    "API_ENV": "production",
    "SECRET_KEY": "test-secret-key-for-production-settings",
    "ALLOWED_HOSTS": "leadline.example.com",
    # Refused configurations stop before connecting; the database need not exist.
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/leadline_never_connected",
}
# Started together (each is a ~1.5 s Django start-up) and awaited by the tests below.
REFUSED_RUNS = {
    "development": ("check_send_mode", {"API_ENV": "development", "MODE_DRAFT_ONLY": "false"}),
    "staging": ("check_send_mode", {"API_ENV": "staging", "MODE_DRAFT_ONLY": "false"}),
    "maybe": ("check_send_mode", {"MODE_DRAFT_ONLY": "maybe"}),
    "check": ("check", {"API_ENV": "development", "MODE_DRAFT_ONLY": "false"}),
    "draft_only": ("check_send_mode", {"DATABASE_URL": "sqlite://:memory:"}),
    "empty_allowlist": ("check_send_mode", {**PRODUCTION, "MODE_DRAFT_ONLY": "false"}),
}


def start(command: str, env: dict[str, str]) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items() if k not in _SEND_VARS}
    return subprocess.Popen(
        [sys.executable, "manage.py", command],
        cwd=REPO,
        env={**base, "LEADLINE_TESTING": "false", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def runs():
    started = {name: start(command, env) for name, (command, env) in REFUSED_RUNS.items()}
    return {name: finish(process) for name, process in started.items()}


def test_send_mode_in_development_is_refused(runs):
    result = runs["development"]

    assert result.returncode != 0
    assert "MODE_DRAFT_ONLY" in result.stderr
    assert "API_ENV" in result.stderr


def test_send_mode_in_staging_is_refused(runs):
    result = runs["staging"]

    assert result.returncode != 0
    assert "API_ENV=staging" in result.stderr


def test_a_malformed_boolean_is_refused_naming_the_variable(runs):
    result = runs["maybe"]

    assert result.returncode != 0
    assert "MODE_DRAFT_ONLY='maybe' is not a boolean" in result.stderr


def test_manage_py_check_fails_in_development_send_mode(runs):
    result = runs["check"]

    assert result.returncode != 0
    assert "outreach.E001" in result.stderr
    assert "MODE_DRAFT_ONLY" in result.stderr


def test_draft_only_development_passes_and_says_nothing_is_sent(runs):
    result = runs["draft_only"]

    assert result.returncode == 0, result.stderr
    assert "Effective mode: DRAFT-ONLY" in result.stdout


def test_production_send_mode_with_empty_allowlist_is_refused(runs):
    result = runs["empty_allowlist"]

    assert result.returncode != 0
    assert "SEND_EMAIL_ALLOWLIST" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_production_send_mode_with_allowlist_passes_with_a_warning_and_is_audited():
    if connection.vendor != "postgresql":
        pytest.skip("production settings require PostgreSQL")
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"

    result = finish(
        start(
            "check_send_mode",
            {
                **PRODUCTION,
                "DATABASE_URL": url,
                "MODE_DRAFT_ONLY": "false",
                "ALLOW_AUTO_SEND": "true",
                "SEND_EMAIL_ALLOWLIST": '["sales@company.com"]',
            },
        )
    )

    assert result.returncode == 0, result.stderr
    assert "WARNING: SEND MODE IS ON" in result.stdout
    assert "SEND_EMAIL_ALLOWLIST: 1 entries" in result.stdout
    recorded = AuditEvent.objects.get(action="send_mode.changed")
    assert recorded.details["mode"]["allowlist"] == ["sales@company.com"]
