"""Settings are strict: a malformed value stops the process and names the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

REPO = Path(__file__).resolve().parents[2]


def boot(**env: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter, as the web/worker processes would."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MODE_", "ALLOW_", "API_"))}
    base.pop("SEND_EMAIL_ALLOWLIST", None)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('booted')"],
        cwd=REPO,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_defaults_boot():
    # empty means unset: the embedded defaults (SQLite under var/, filesystem broker)
    assert boot(DATABASE_URL="", CELERY_BROKER_URL="").stdout.strip() == "booted"


@pytest.mark.parametrize("name", ["MODE_DRAFT_ONLY", "ALLOW_AUTO_SEND", "DEBUG"])
def test_a_typo_in_a_boolean_stops_the_process_naming_the_variable(name):
    result = boot(**{name: "maybe"})
    assert result.returncode != 0
    assert f"{name}='maybe' is not a boolean" in result.stderr


@pytest.mark.parametrize("value", ["sales@company.com", '{"a": 1}', "[1, 2]", '["ok", ""]'])
def test_an_allowlist_that_is_not_a_json_list_of_strings_stops_the_process(value):
    result = boot(SEND_EMAIL_ALLOWLIST=value)
    assert result.returncode != 0
    assert "SEND_EMAIL_ALLOWLIST must be a JSON list" in result.stderr


def test_an_unknown_api_env_is_refused():
    result = boot(API_ENV="prod")
    assert result.returncode != 0 and "API_ENV='prod' must be one of" in result.stderr


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("SECRET_KEY", "SECRET_KEY is required"),
        ("ALLOWED_HOSTS", "ALLOWED_HOSTS is required"),
        ("DATABASE_URL", "DATABASE_URL must point at PostgreSQL"),
    ],
)
def test_production_refuses_to_start_without_its_essentials(missing, message):
    env = {
        "API_ENV": "production",
        "SECRET_KEY": "s" * 50,
        "ALLOWED_HOSTS": "leadline.example.com",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/leadline",
    }
    env[missing] = "sqlite:///var/x.sqlite3" if missing == "DATABASE_URL" else ""
    result = boot(**env)
    assert result.returncode != 0 and message in result.stderr


def test_the_allowlist_is_parsed_and_lowercased():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.SEND_EMAIL_ALLOWLIST)",
        ],
        cwd=REPO,
        env={**os.environ, "SEND_EMAIL_ALLOWLIST": '["Sales@Company.com", "@Partner.io"]'},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "['sales@company.com', '@partner.io']"


def test_sqlite_embedded_default_uses_wal_and_a_busy_timeout(tmp_path):
    code = (
        "import django; django.setup(); from django.db import connection; c = connection.cursor();"
        "c.execute('PRAGMA journal_mode'); print(c.fetchone()[0]);"
        "c.execute('PRAGMA busy_timeout'); print(c.fetchone()[0])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["wal", "20000"], out.stderr


def test_the_suite_runs_on_postgresql_when_make_test_says_so():
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        assert connection.vendor == "postgresql"
    else:
        pytest.skip("DATABASE_URL is not PostgreSQL (make test sets it)")


def test_behind_pgbouncer_nothing_needs_a_session():
    """DATABASE_POOLER=pgbouncer (transaction pooling): no prepared statements, no server-side
    binding or cursors, no `options` startup parameter (PgBouncer refuses it)."""
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "d = s.DATABASES['default']; o = d['OPTIONS']; "
        "print(o['prepare_threshold'], o['server_side_binding'], 'options' in o, "
        "d['DISABLE_SERVER_SIDE_CURSORS'], s.DATABASE_POOLER)"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": "postgres://u@127.0.0.1:6432/leadline",
    }
    pooled = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**env, "DATABASE_POOLER": "pgbouncer"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert pooled.stdout.split() == ["None", "False", "False", "True", "pgbouncer"], pooled.stderr
    assert boot(DATABASE_POOLER="pgpool").returncode != 0


def test_prepared_statements_are_on_for_a_direct_connection_and_can_be_turned_off():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['OPTIONS']['prepare_threshold'])"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": "postgres://u@127.0.0.1:5432/leadline",
        "DATABASE_POOLER": "none",
    }

    def threshold(**extra: str) -> str:
        run = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    assert threshold() == "5"
    assert threshold(DB_PREPARE_THRESHOLD="2") == "2"
    assert threshold(DB_PREPARE_THRESHOLD="0") == "None"
