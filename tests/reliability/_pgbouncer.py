"""A PgBouncer of the test's own, in transaction pooling mode, in front of the local PostgreSQL.

Debian's ``pgbouncer`` (scripts/ensure-services.sh installs it). The test writes a config for a
free port: any database name maps to the same database on the server, auth is trust, as the
local PostgreSQL's is. PgBouncer refuses to run as root, so it drops to the ``postgres`` user
(``-u``) when the test runs as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from tests.harness import _free_port


class PgBouncer:
    def __init__(self, server_host: str, server_port: int, *, pool_size: int = 10) -> None:
        self.server = (server_host, server_port)
        self.pool_size = pool_size
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="leadline-pgbouncer-"))
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15) -> PgBouncer:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not os.path.exists(binary):
            pytest.skip("pgbouncer is not installed (make services installs it)")
        host, port = self.server
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        config = self.dir / "pgbouncer.ini"
        config.write_text(
            f"""[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir / "userlist.txt"}
pool_mode = transaction
default_pool_size = {self.pool_size}
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
server_reset_query =
admin_users = postgres
"""
        )
        self.dir.chmod(0o755)
        for path in self.dir.iterdir():
            path.chmod(0o644)
        command = [binary, str(config)]
        if os.geteuid() == 0:
            command[1:1] = ["-u", "postgres"]
        self.log = (self.dir / "pgbouncer.log").open("wb")
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.tail()}")
            try:
                with psycopg.connect(
                    host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"
                ):
                    return self
            except psycopg.OperationalError:
                time.sleep(0.2)
        raise RuntimeError(f"pgbouncer not ready: {self.tail()}")

    def show(self, what: str) -> list[tuple]:
        """``SHOW <what>`` on the admin console (pools, stats, config …)."""
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="pgbouncer", autocommit=True
        ) as conn:
            cursor = conn.cursor()
            cursor.execute(f"SHOW {what}")
            columns = [c.name for c in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def tail(self) -> str:
        return (self.dir / "pgbouncer.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
