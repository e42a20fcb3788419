"""`make run` as a newcomer meets it (issue #15): scripts/run.sh as a subprocess on free ports,
the README's second command in "another shell", a second `make run` on the same port, a
configuration error, and Ctrl-C. About 25 s.

The instance runs as on a fresh clone: its own var/ (LEADLINE_VAR_DIR) holding the embedded
defaults (SQLite, the filesystem broker, var/run/<port>/), and the bundled sandbox. It shares
nothing with the test run's database and broker, where the e2e session's relay and worker
would otherwise take its work.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.harness import REPO, wait_for
from workflows.models import Status

pytestmark = [pytest.mark.e2e]

PY = str(REPO / ".venv" / "bin" / "python")
# Variables a developer's shell or the test run may carry that `make run` must not see here.
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
    "DJANGO_SETTINGS_MODULE",
    "LEADLINE_TESTING",
)


def _free_ports(count: int) -> int:
    """A base port with ``count`` consecutive free ports."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count < 65535 and all(_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    """A newcomer's shell in this checkout: no Leadline variables, its own var/."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(
        {
            "LEADLINE_VAR_DIR": str(tmp_path / "var"),
            "LEADLINE_OPERATOR_USERNAME": "operator",
            "LEADLINE_OPERATOR_PASSWORD": "a-long-test-password-15",
            "CONTACT_SEARCH_LAG_BASE_SECONDS": "0.1",
        }
    )
    return env


def _workflows(env: dict[str, str]) -> list[tuple[int, str]]:
    """(id, status) of every workflow in the instance's own SQLite database."""
    path = Path(env["LEADLINE_VAR_DIR"]) / "leadline.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        return db.execute("SELECT id, status FROM workflows ORDER BY id").fetchall()


def _metric(port: int, name: str) -> float:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    values = [float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)} (\S+)$", text, re.M)]
    return sum(values)


def _run(env: dict[str, str], **extra: str) -> subprocess.CompletedProcess:
    started = time.monotonic()
    done = subprocess.run(
        ["scripts/run.sh"], cwd=REPO, env={**env, **extra}, capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip
    done.seconds = time.monotonic() - started  # type: ignore[attr-defined]
    return done


def test_make_run_first_run_second_instance_config_error_and_ctrl_c(shell_env):
    port = _free_ports(2)
    first = subprocess.Popen(
        ["scripts/run.sh"],
        cwd=REPO,
        env={**shell_env, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # Ctrl-C reaches the terminal's process group: emulated below
    )
    try:
        wait_for(lambda: _healthy(port), timeout=60)

        # The README's second command, exactly, in another shell of the same checkout.
        sent = subprocess.run(
            [PY, "manage.py", "send_test_webhook"],
            cwd=REPO,
            env=shell_env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("202 "), sent.stdout
        [(workflow_id, _)] = _workflows(shell_env)
        assert f"workflow #{workflow_id}: http://127.0.0.1:{port}/dashboard/workflows/" in (
            sent.stdout
        )
        # The lead reaches the inbox: processed by this run's worker, against its sandbox.
        wait_for(
            lambda: _workflows(shell_env) == [(workflow_id, Status.AWAITING_APPROVAL)],
            timeout=45,
        )

        # The CRM task links to this instance's dashboard (one number: the workflow's). Under
        # `honcho start` each process got its own PORT, and the worker linked to port + 100.
        # (A new contact's task follows its attach, a moment after the draft: issue #16.)
        def tasks() -> list:
            state = requests.get(f"http://127.0.0.1:{port + 1}/__sandbox__/state", timeout=5)
            return state.json()["tasks"]

        [task] = wait_for(tasks, timeout=30)
        link = f"http://127.0.0.1:{port}/dashboard/workflows/{workflow_id}/"
        assert link in task["properties"]["hs_task_body"]
        accepted = _metric(port, 'leadline_webhooks_total{outcome="accepted"}')
        assert accepted == 1

        # A second `make run` on the same port: one line naming the process, in < 5 s.
        second = _run(shell_env, PORT=str(port))
        assert second.returncode != 0
        assert second.seconds < 5
        assert second.stdout == ""
        assert re.fullmatch(
            rf"Port {port} is already in use by pid \d+ \(.*gunicorn.*\)\. Stop it, or start on "
            r"other ports: PORT=\d+ make run\n",
            second.stderr,
        ), second.stderr
        # ... and the first instance's metrics are untouched.
        assert _metric(port, 'leadline_webhooks_total{outcome="accepted"}') == accepted

        # A malformed variable: one line naming it and the values expected, no traceback.
        other = _free_ports(2)
        bad = _run(shell_env, PORT=str(other), MODE_DRAFT_ONLY="maybe")
        assert (bad.returncode, bad.stdout) == (2, "")
        assert bad.stderr == (
            "Configuration error: MODE_DRAFT_ONLY='maybe' is not a boolean; use one of "
            "true/false, 1/0, yes/no, on/off.\n"
        )
        assert not (
            Path(shell_env["LEADLINE_VAR_DIR"]) / "run" / str(other) / "prometheus"
        ).exists()
        assert _metric(port, 'leadline_webhooks_total{outcome="accepted"}') == accepted
    finally:
        # Ctrl-C: the terminal signals the foreground process group (run.sh's, not the
        # processes it started, which run in their own sessions).
        started = time.monotonic()
        os.killpg(first.pid, signal.SIGINT)
        output, _ = first.communicate(timeout=15)
        stopped_in = time.monotonic() - started
        print(output)  # shown when the test fails
    assert first.returncode == 0, output[-3000:]
    assert stopped_in < 10, stopped_in
    assert "SIGKILL" not in output
    assert "Could not record the send mode" not in output
    assert "No hostname was supplied" not in output
    assert "No directory at" not in output
    assert not _healthy(port)


def _healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok
    except requests.RequestException:
        return False
