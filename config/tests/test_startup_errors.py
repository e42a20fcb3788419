"""A malformed variable stops every entry point with one line naming it, and no traceback
(issue #15): manage.py commands, gunicorn (web), celery (worker and beat). `make run` is in
tests/test_make_run.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENTRY_POINTS = {
    "manage.py check_send_mode": [sys.executable, "manage.py", "check_send_mode"],
    "manage.py send_test_webhook": [sys.executable, "manage.py", "send_test_webhook"],
    "gunicorn": [
        str(BIN / "gunicorn"),
        "config.wsgi",
        "-c",
        "config/gunicorn.py",
        "-b",
        "127.0.0.1:0",
    ],
    "celery worker": [str(BIN / "celery"), "-A", "config", "worker", "--pool", "solo"],
    "celery beat": [str(BIN / "celery"), "-A", "config", "beat"],
}
BAD = {
    "MODE_DRAFT_ONLY": (
        "maybe",
        "Configuration error: MODE_DRAFT_ONLY='maybe' is not a boolean; use one of true/false, "
        "1/0, yes/no, on/off.\n",
    ),
    "API_ENV": (
        "production",
        "Configuration error: SECRET_KEY is required when API_ENV=production.\n",
    ),
}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    return {**env, "LOG_FILE": "", **extra}


@pytest.mark.parametrize("variable", sorted(BAD))
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_one_line_naming_the_variable(entry, variable):
    value, line = BAD[variable]
    done = subprocess.run(
        ENTRY_POINTS[entry],
        cwd=REPO,
        env=_env(**{variable: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr == line, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "KeyError" not in done.stdout + done.stderr
