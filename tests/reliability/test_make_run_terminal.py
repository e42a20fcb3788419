"""`make run` in a terminal, Ctrl-C pressed (issue #15): every process stops, no SIGKILL, and
`make` itself exits 0 without "make: *** [run] Interrupt" (scripts/supervise.py takes the
terminal's foreground). Runs `make run` in a pseudo-terminal on free ports with the default
SQLite and filesystem broker in its own var/. About 20 s: full runs only (`make reliability`)."""

from __future__ import annotations

import os
import pty
import select
import time

import pytest

from tests.harness import REPO
from tests.reliability.conftest import FULL
from tests.test_make_run import UNSET, _free_ports

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.skipif(not FULL, reason="full runs only (make reliability)"),
]


def _read(fd: int, seconds: float) -> tuple[bytes, bool]:
    """What the terminal shows within ``seconds``; False once it is closed."""
    out, end = b"", time.monotonic() + seconds
    while time.monotonic() < end:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return out, False
            if not chunk:
                return out, False
            out += chunk
    return out, True


def test_ctrl_c_in_a_terminal_stops_make_run_with_exit_0(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in (*UNSET, "DATABASE_URL")}
    env |= {"PORT": str(_free_ports(2)), "LEADLINE_VAR_DIR": str(tmp_path / "var")}
    env |= {"LEADLINE_OPERATOR_PASSWORD": "a-long-test-password-15"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: `make run` as typed at a prompt
        os.chdir(REPO)
        os.execvpe("make", ["make", "run"], env)  # noqa: S606 - exactly what a user types
    shown, open_ = b"", True
    deadline = time.monotonic() + 90
    while b"celery@" not in shown and open_ and time.monotonic() < deadline:
        chunk, open_ = _read(fd, 0.5)
        shown += chunk
    chunk, open_ = _read(fd, 3)  # let the worker finish starting
    shown += chunk

    started = time.monotonic()
    os.write(fd, b"\x03")  # Ctrl-C, through the terminal's line discipline
    while open_ and time.monotonic() - started < 20:
        chunk, open_ = _read(fd, 0.5)
        shown += chunk
    _, status = os.waitpid(pid, 0)
    took = time.monotonic() - started
    os.close(fd)

    text = shown.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text[-3000:]
    assert took < 10
    assert "SIGINT received" in text
    assert "SIGKILL" not in text and "make: ***" not in text
