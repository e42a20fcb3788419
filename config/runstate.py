"""`make run`'s runtime state, one directory per port, and its pre-flight check (issue #15).

    (var/ is LEADLINE_VAR_DIR when set.)
    var/dev-client-secret        the development HUBSPOT_CLIENT_SECRET (created once, never
                                 rewritten, so every instance and send_test_webhook share it)
    var/run/<port>/lock          flock()ed by the running instance for as long as it runs
    var/run/<port>/instance.json its port, pid, sandbox URL and secret file (running_instance():
                                 send_test_webhook, replay's links, reconcile_forms)
    var/run/<port>/prometheus    PROMETHEUS_MULTIPROC_DIR (wiped only by the lock's holder)
    var/run/<port>/celerybeat-schedule

`python -m config.runstate shell-vars` tells scripts/run.sh, in one Python start, what the settings
will read for VAR_DIR, OUTREACH_DRAFTER and LLM_BASE_URL, and whether HubSpot's token and secret
are configured: the shell does not read .env, Python does (config/env.py), so the shell must not
work them out on its own.

`python -m config.runstate preflight --port 8000 --port 8001 --lock-fd 9` runs next in
scripts/run.sh, before anything is touched: it refuses a port another process listens on (one
line naming that process), takes the instance lock on the descriptor run.sh opened, and loads
the settings (one line naming a malformed variable). Exit 0 when `make run` may go on.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import os
import secrets
import shlex
import socket
import sys
from pathlib import Path

from config.env import env, var_dir

#: settings.VAR_DIR (this module must not load the settings).
VAR_DIR = var_dir()
RUN_DIR = VAR_DIR / "run"
DEV_SECRET_FILE = VAR_DIR / "dev-client-secret"
PORT_IN_USE_EXIT = 3
#: The access token scripts/run.sh exports when it starts the local HubSpot sandbox (no real
#: HUBSPOT_ACCESS_TOKEN; run.sh reads it from shell-vars); the sandbox takes any non-empty
#: token. Not a secret.
SANDBOX_TOKEN = "sandbox-token"  # noqa: S105 (the local sandbox's, not a credential)


def run_dir(port: int) -> Path:
    return RUN_DIR / str(port)


def port_owner(port: int, host: str = "127.0.0.1") -> str | None:
    """None when ``host:port`` can be listened on, else who listens there, in words."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return f"an error ({exc.strerror})"
        else:
            return None
    return _describe_listener(port) or "another process"


def _describe_listener(port: int) -> str | None:
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return "a process of another user"
            try:
                proc = psutil.Process(conn.pid)
                command = " ".join(proc.cmdline()) or proc.name()
            except psutil.Error:
                return f"pid {conn.pid}"
            if len(command) > 100:
                command = command[:97] + "..."
            return f"pid {conn.pid} ({command})"
    return None


def lock_instance(fd: int) -> bool:
    """Take the instance lock on an open descriptor; False if another instance holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _lock_is_held(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def dev_client_secret(*, create: bool = False) -> str:
    """The development webhook secret; created atomically once when ``create``."""
    try:
        return DEV_SECRET_FILE.read_text().strip()
    except FileNotFoundError:
        if not create:
            return ""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    candidate = VAR_DIR / f".dev-client-secret.{os.getpid()}"
    candidate.write_text(secrets.token_hex(16) + "\n")
    try:
        os.link(candidate, DEV_SECRET_FILE)  # fails if another process created it first
    except FileExistsError:
        pass
    finally:
        candidate.unlink()
    return DEV_SECRET_FILE.read_text().strip()


def write_instance(port: int, **info: object) -> None:
    path = run_dir(port) / "instance.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"port": port, "pid": os.getppid(), **info}, indent=1))
    tmp.replace(path)


def running_instances() -> list[dict]:
    """The `make run` instances alive now (their lock is held), lowest port first."""
    found = []
    for path in sorted(RUN_DIR.glob("*/instance.json")):
        if not _lock_is_held(path.parent / "lock"):
            continue
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(found, key=lambda i: int(i.get("port", 0)))


class SeveralInstances(Exception):
    """More than one `make run` is running and PORT does not say which one is meant."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        listed = ", ".join(str(port) for port in ports)
        super().__init__(f"`make run` is running on ports {listed}: set PORT=<one of them>.")


def running_instance() -> dict:
    """The `make run` a command in another shell means: the one on $PORT, else the only one
    running, else {} (none). Raises SeveralInstances when several run and PORT is unset.

    send_test_webhook posts to it; replay links to its dashboard; reconcile_forms polls its
    HubSpot sandbox."""
    instances = running_instances()
    wanted = os.environ.get("PORT", "").strip()
    if wanted:
        return next((i for i in instances if str(i.get("port")) == wanted), {"port": wanted})
    if len(instances) > 1:
        raise SeveralInstances([int(i["port"]) for i in instances])
    return instances[0] if instances else {}


def instance_url(instance: dict) -> str:
    """Where ``instance`` (running_instance) serves: "http://127.0.0.1:8901", or "" for none."""
    port = instance.get("port")
    return f"http://127.0.0.1:{port}" if port else ""


def local_sandbox(base: str) -> str:
    """``base`` when it is a local HubSpot sandbox (`manage.py hubspot_sandbox`: it answers its
    control API), else ""."""
    import requests

    if not base.startswith(("http://127.0.0.1", "http://localhost")):
        return ""
    try:
        return base if requests.get(f"{base}/__sandbox__/state", timeout=2).ok else ""
    except requests.RequestException:
        return ""


def shell_vars() -> str:
    """``KEY=value`` lines, shell-quoted, for run.sh to ``eval``: the values as the settings
    will read them (the environment first, then .env)."""
    values = {
        "VAR_DIR": str(VAR_DIR),
        "OUTREACH_DRAFTER": env.str("OUTREACH_DRAFTER", default=""),
        "LLM_BASE_URL": env.str("LLM_BASE_URL", default=""),
        # Whether HubSpot's credentials are configured (in .env too), never their values: with
        # them set only in .env, run.sh used to start the sandbox and a development secret,
        # which then won over .env (config/env.py does not overwrite the environment).
        "HUBSPOT_ACCESS_TOKEN_CONFIGURED": _configured("HUBSPOT_ACCESS_TOKEN"),
        "HUBSPOT_CLIENT_SECRET_CONFIGURED": _configured("HUBSPOT_CLIENT_SECRET"),
        # The token run.sh gives the local sandbox it starts (reconcile_forms uses it too).
        "SANDBOX_TOKEN": SANDBOX_TOKEN,
    }
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


def _configured(name: str) -> str:
    return "yes" if env.str(name, default="").strip() else ""


def preflight(ports: list[int], lock_fd: int | None) -> str | None:
    """The one line that stops `make run`, or None when it may go on."""
    for port in ports:
        owner = port_owner(port)
        if owner:
            return (
                f"Port {port} is already in use by {owner}. Stop it, or start on other ports: "
                f"PORT={_free_suggestion(ports)} make run"
            )
    if lock_fd is not None and not lock_instance(lock_fd):
        return (
            f"Another `make run` on port {ports[0]} is starting (it holds "
            f"{run_dir(ports[0])}/lock)."
        )
    return None


def _free_suggestion(ports: list[int]) -> int:
    candidate = max(ports) + 10
    while any(port_owner(candidate + i) for i in range(3)):
        candidate += 10
    return candidate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.runstate")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("preflight", help="ports free, instance lock, settings valid")
    check.add_argument("--port", type=int, action="append", required=True)
    check.add_argument("--lock-fd", type=int)
    commands.add_parser(
        "shell-vars", help="VAR_DIR, OUTREACH_DRAFTER, LLM_BASE_URL, HubSpot credentials set?"
    )
    commands.add_parser("dev-secret", help="print the development secret, creating it once")
    record = commands.add_parser("record", help="write var/run/<port>/instance.json")
    record.add_argument("--port", type=int, required=True)
    record.add_argument("--sandbox-url", default="")
    record.add_argument("--secret-file", default="")
    args = parser.parse_args(argv)

    if args.command == "shell-vars":
        sys.stdout.write(shell_vars())
        return 0
    if args.command == "dev-secret":
        print(dev_client_secret(create=True))
        return 0
    if args.command == "record":
        write_instance(args.port, sandbox_url=args.sandbox_url, secret_file=args.secret_file)
        return 0
    refusal = preflight(args.port, args.lock_fd)
    if refusal:
        sys.stderr.write(refusal + "\n")
        return PORT_IN_USE_EXIT
    from config.startup import require_valid_settings

    require_valid_settings()
    return 0


if __name__ == "__main__":
    sys.exit(main())
