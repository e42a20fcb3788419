"""`make run`'s process supervisor: honcho's Manager running the named Procfile processes.

    .venv/bin/python scripts/supervise.py web worker beat sandbox

Differs from `honcho start` where `make run` needs it to (issue #15):
- Ctrl-C or SIGTERM is a normal stop: exit 0 once every process has ended (honcho exits
  130/143). A process that fails on its own still ends the run with its exit status.
- Processes get up to 9 s to stop before SIGKILL (honcho: 5 s; a prefork Celery worker on the
  filesystem broker takes about 6 s), so everything stops within 10 s.
- Each process inherits the environment as it is: honcho's `start` would give each one its own
  PORT (8100, 8200, ...), and the worker would then link CRM tasks to the wrong port.
"""

from __future__ import annotations

import os
import sys
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
    for name in names:
        manager.add_process(f"{name}.1", procfile.processes[name], env=dict(os.environ))
    manager.loop()
    # honcho's return code is the signal's (130/143) when the stop was asked for, else the
    # first process to end's own status.
    rc = manager.returncode or 0
    if rc in SIGNAL_STOPS:
        return 0
    return 128 - rc if rc < 0 else rc  # killed by a signal: the shell's 128 + signal


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
