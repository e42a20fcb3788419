"""`make run`'s process supervisor: honcho's Manager running the named Procfile processes.

    .venv/bin/python scripts/supervise.py web worker beat sandbox

Differs from `honcho start` where `make run` needs it to (issue #15):
- Ctrl-C or SIGTERM is a normal stop: exit 0 once every process has ended (honcho exits
  130/143). A process that fails on its own still ends the run with its exit status.
- SIGTERM goes to each process itself, not its whole process group (honcho's killpg also hit
  the Celery pool's children, which the worker then replaced while shutting down, and gunicorn's
  workers): each process stops its own children. After 9 s (honcho: 5 s) what is left of a
  group gets SIGKILL, so everything stops within 10 s.
- In a terminal it takes the foreground, as a job-control shell gives a job: Ctrl-C then reaches
  the supervisor and not `make`, which would otherwise print "make: *** [run] Interrupt" and exit
  130 however cleanly everything stopped. The terminal is handed back on exit.
- Each process inherits the environment as it is: honcho's `start` would give each one its own
  PORT (8100, 8200, ...), and the worker would then link CRM tasks to the wrong port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from honcho import manager as honcho_manager
from honcho.environ import parse_procfile
from honcho.printer import Printer

STOP_WAIT_SECONDS = 9
SIGNAL_STOPS = {rc["rc"] for rc in honcho_manager.SIGNALS.values()}


def main(names: list[str]) -> int:
    procfile = parse_procfile((Path(__file__).resolve().parent.parent / "Procfile").read_text())
    unknown = [name for name in names if name not in procfile.processes]
    if not names or unknown:
        known = ", ".join(procfile.processes)
        sys.stderr.write(
            f"Unknown process {', '.join(unknown) or '(none)'}; Procfile has {known}\n"
        )
        return 2
    honcho_manager.KILL_WAIT = STOP_WAIT_SECONDS
    manager = honcho_manager.Manager(Printer(sys.stdout, colour=sys.stdout.isatty()))
    manager._procmgr.terminate = _terminate_leader
    for name in names:
        manager.add_process(f"{name}.1", _exec(procfile.processes[name]), env=dict(os.environ))
    give_back = _take_the_terminal()
    try:
        manager.loop()
    finally:
        give_back()
    # honcho's return code is the signal's (130/143) when the stop was asked for, else the
    # first process to end's own status.
    rc = manager.returncode or 0
    if rc in SIGNAL_STOPS:
        return 0
    return 128 - rc if rc < 0 else rc  # killed by a signal: the shell's 128 + signal


def _exec(command: str) -> str:
    """A simple command (``VAR=value ... program args``) run by `exec env`, so the process
    honcho signals is the program, not a shell waiting for it."""
    if any(c in command for c in ";&|()`") or command.startswith("exec "):
        return command
    return f"exec env {command}"


def _take_the_terminal() -> Callable[[], None]:
    """Become the terminal's foreground process group, if we are in it; returns the undo."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        return lambda: None  # no controlling terminal (tests, CI, compose)
    try:
        previous = os.tcgetpgrp(tty)
        if previous != os.getpgrp():
            raise OSError("not the foreground job")
        os.setpgid(0, 0)
        _set_foreground(tty, os.getpgrp())
    except OSError:
        os.close(tty)
        return lambda: None

    def give_back() -> None:
        with contextlib.suppress(OSError):
            _set_foreground(tty, previous)
        os.close(tty)

    return give_back


def _set_foreground(tty: int, pgrp: int) -> None:
    # A background group that sets the foreground gets SIGTTOU unless it ignores it.
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(tty, pgrp)
    finally:
        signal.signal(signal.SIGTTOU, old)


def _terminate_leader(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
