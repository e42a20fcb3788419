"""`make run` reads its runtime state where the settings do (issue #15): LEADLINE_VAR_DIR,
OUTREACH_DRAFTER and LLM_BASE_URL may come from .env, which only Python reads.

Each test runs in a copy of the checkout whose own .env says where var/ is (config/env.py reads
the .env beside config/): config/ and scripts/run.sh are copied, everything else is linked.
A few seconds: run.sh stops at its pre-flight on a malformed variable.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: What the developer's shell or the test run may carry that these runs must not see.
UNSET = (
    "PORT",
    "SANDBOX_PORT",
    "LLM_SANDBOX_PORT",
    "HUBSPOT_ACCESS_TOKEN",
    "HUBSPOT_API_BASE_URL",
    "HUBSPOT_CLIENT_SECRET",
    "CELERY_BROKER_URL",
    "DATABASE_URL",
    "PROMETHEUS_MULTIPROC_DIR",
    "OUTREACH_DRAFTER",
    "LLM_BASE_URL",
    "LEADLINE_VAR_DIR",
    "DJANGO_SETTINGS_MODULE",
    "LEADLINE_TESTING",
    "MODE_DRAFT_ONLY",
)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout without .env or var/: config/ and scripts/run.sh its own, the rest linked."""
    root = tmp_path / "checkout"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name in ("config", "scripts", ".env", "var", "logs", "staticfiles", ".git"):
            continue
        (root / entry.name).symlink_to(entry)
    shutil.copytree(
        REPO / "config", root / "config", ignore=shutil.ignore_patterns("__pycache__", "tests")
    )
    (root / "scripts").mkdir()
    shutil.copy2(REPO / "scripts" / "run.sh", root / "scripts" / "run.sh")
    return root


@pytest.fixture
def shell_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in UNSET}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shell_vars_are_what_the_settings_read_from_env_file(checkout, shell_env, tmp_path):
    var = tmp_path / "state dir's var"  # a space and a quote: the values are shell-quoted
    (checkout / ".env").write_text(
        f"LEADLINE_VAR_DIR={var}\nOUTREACH_DRAFTER=llm\nLLM_BASE_URL=http://127.0.0.1:9/v1\n"
    )
    shown = subprocess.run(
        ["bash", "-c", 'eval "$(.venv/bin/python -m config.runstate shell-vars)" && '
         'printf "%s\\n" "$VAR_DIR" "$OUTREACH_DRAFTER" "$LLM_BASE_URL"'],
        cwd=checkout, env=shell_env, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert shown.stdout.splitlines() == [str(var), "llm", "http://127.0.0.1:9/v1"]

    # The environment still wins over .env, and without either var/ is the checkout's.
    (checkout / ".env").write_text("OUTREACH_DRAFTER=llm\n")
    shown = subprocess.run(
        [".venv/bin/python", "-m", "config.runstate", "shell-vars"],
        cwd=checkout, env={**shell_env, "OUTREACH_DRAFTER": "template"}, capture_output=True,
        text=True, timeout=30, check=True,
    )  # fmt: skip
    assert shown.stdout == (
        f"VAR_DIR={checkout / 'var'}\nOUTREACH_DRAFTER=template\nLLM_BASE_URL=''\n"
        "HUBSPOT_ACCESS_TOKEN_CONFIGURED=''\nHUBSPOT_CLIENT_SECRET_CONFIGURED=''\n"
        "SANDBOX_TOKEN=sandbox-token\n"
    )


def test_hubspot_credentials_in_env_file_are_seen_and_not_shown(checkout, shell_env):
    # `make run` started the sandbox and a development secret when the real ones were only in
    # .env, and those then won over .env: real webhooks got 401 (stop 23's walkthrough).
    (checkout / ".env").write_text(
        "HUBSPOT_ACCESS_TOKEN=pat-na1-secret-token\nHUBSPOT_CLIENT_SECRET=secret-of-the-app\n"
    )
    shown = subprocess.run(
        [".venv/bin/python", "-m", "config.runstate", "shell-vars"],
        cwd=checkout, env=shell_env, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert "HUBSPOT_ACCESS_TOKEN_CONFIGURED=yes" in shown.stdout.splitlines()
    assert "HUBSPOT_CLIENT_SECRET_CONFIGURED=yes" in shown.stdout.splitlines()
    assert "secret-token" not in shown.stdout and "secret-of-the-app" not in shown.stdout


def test_run_sh_locks_the_var_dir_that_env_file_names(checkout, shell_env, tmp_path):
    """LEADLINE_VAR_DIR only in .env: the pre-flight's lock is under it, not under ./var/."""
    var = tmp_path / "elsewhere"
    (checkout / ".env").write_text(f"LEADLINE_VAR_DIR={var}\n")
    port = _free_port()
    bad = subprocess.run(
        ["scripts/run.sh"],
        cwd=checkout, env={**shell_env, "PORT": str(port), "MODE_DRAFT_ONLY": "maybe"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (bad.returncode, bad.stdout) == (2, ""), bad.stderr
    assert bad.stderr.startswith("Configuration error: MODE_DRAFT_ONLY='maybe'"), bad.stderr
    assert (var / "run" / str(port) / "lock").is_file()
    assert not (checkout / "var").exists()


@pytest.mark.parametrize("in_env_file", [True, False])
def test_run_sh_plans_the_sandbox_only_without_a_token_in_env_file(
    checkout, shell_env, in_env_file
):
    # The sandbox's port is held: the pre-flight names it only when run.sh plans the sandbox.
    # MODE_DRAFT_ONLY=maybe stops the run at the settings check either way.
    if in_env_file:
        (checkout / ".env").write_text("HUBSPOT_ACCESS_TOKEN=pat-na1-from-the-env-file\n")
    port = _free_port()
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        sandbox_port = held.getsockname()[1]
        run = subprocess.run(
            ["scripts/run.sh"],
            cwd=checkout,
            env={**shell_env, "PORT": str(port), "SANDBOX_PORT": str(sandbox_port),
                 "MODE_DRAFT_ONLY": "maybe"},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    if in_env_file:
        assert run.stderr.startswith("Configuration error: MODE_DRAFT_ONLY"), run.stderr
    else:
        assert run.stderr.startswith(f"Port {sandbox_port} is already in use"), run.stderr
