"""End-to-end fixtures: a real Celery worker process on real Redis and the test PostgreSQL
database, and the HubSpot sandbox over real HTTP. Nothing here runs tasks eagerly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings
from django.db import connection

from intake.signatures import signed_headers
from workflows.hubspot.sandbox import SandboxServer

REPO = Path(__file__).resolve().parents[1]


def _broker_url() -> str:
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis://"):
        pytest.skip("end-to-end tests need CELERY_BROKER_URL=redis://… (make test sets it)")
    return url


@pytest.fixture(scope="session")
def e2e_sandbox() -> Iterator[SandboxServer]:
    server = SandboxServer(token="e2e-token").start()
    yield server
    server.stop()


class Worker:
    """A `celery -A config worker` subprocess that can be killed and restarted."""

    ready_marker = b" ready."

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *,
        hostname: str | None = None,
        concurrency: int = 4,
    ) -> None:
        self.env = env
        self.log_path = log_path
        self.hostname = hostname or f"e2e-{os.getpid()}@%h"
        self.concurrency = concurrency
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(self.concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
            "--hostname",
            self.hostname,
        ]

    def start(self, timeout: float = 60) -> None:
        self.log_path.parent.mkdir(exist_ok=True)
        log = self.log_path.open("ab")
        offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            self.command(),
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() takes the children too
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.tail()}")
            with self.log_path.open("rb") as f:
                f.seek(offset)
                if self.ready_marker in f.read():
                    return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready: {self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acks, exactly like an OOM kill."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)  # the main process and its pool children
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


class Relay(Worker):
    """A `manage.py outbox_relay` subprocess (workflows/relay.py): the webhook publishes
    nothing, so without one next to the worker no new workflow would ever run."""

    ready_marker = b"Outbox relay started"

    def command(self) -> list[str]:
        return [sys.executable, "manage.py", "outbox_relay"]

    def published(self) -> int:
        """Workflows this relay's log says it published, over its whole life."""
        total = 0
        for line in self.log_path.read_text(errors="replace").splitlines():
            if '"Outbox batch published"' in line:
                total += json.loads(line[line.index("{") :])["published"]
        return total


class GunicornServer:
    """The web app in its own gunicorn process, configured by environment like production."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> GunicornServer:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                # as the Procfile and docker-compose run it (its access log format included)
                "-c",
                "config/gunicorn.py",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--threads",
                "2",
                # A stop must not wait out gunicorn's default 30 s for an idle keep-alive.
                "--graceful-timeout",
                "5",
            ],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(self._healthy, timeout=60)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=3).status_code == 200
        except requests.RequestException:
            return False

    def __exit__(self, *exc_info: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:  # a loaded machine; the test's verdict stands
            self.proc.kill()
            self.proc.wait(timeout=5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def worker_env(django_db_setup, e2e_sandbox) -> dict[str, str]:
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    broker = _broker_url()
    redis.Redis.from_url(broker).flushdb()
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker,
        "HUBSPOT_ACCESS_TOKEN": e2e_sandbox.token,
        "HUBSPOT_API_BASE_URL": e2e_sandbox.url,
        "HUBSPOT_RATE_LIMIT_PER_10S": "180",
        "HUBSPOT_SEARCH_RATE_PER_S": "10",
        "WORKFLOW_RETRY_BASE_SECONDS": "1",
        "WORKFLOW_LEASE_SECONDS": "6",
        "CONTACT_SEARCH_LAG_BASE_SECONDS": "0.3",
        "HUBSPOT_TIMEOUT_SECONDS": "1",
        # A 429 DAILY halts calls until midnight in production; 3 s here.
        "HUBSPOT_DAILY_PAUSE_SECONDS": "3",
        "EMAIL_URL": "memorymail://",
        "LOG_FILE": "",
    }


@pytest.fixture(scope="session")
def celery_worker(worker_env, django_db_blocker) -> Iterator[Worker]:
    worker = Worker(worker_env, REPO / "var" / "e2e-worker.log")
    worker.start()
    yield worker
    worker.stop()
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        # let pytest-django drop the test database
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="session")
def outbox_relay(worker_env, celery_worker) -> Iterator[Relay]:
    """The outbox relay next to the worker (started after it, stopped before it)."""
    log_path = REPO / "var" / "e2e-relay.log"
    log_path.unlink(missing_ok=True)
    relay = Relay({**worker_env, "OUTBOX_RELAY_POLL_SECONDS": "0.5"}, log_path)
    relay.start()
    _SESSION_RELAYS.append(relay)
    yield relay
    _SESSION_RELAYS.remove(relay)
    relay.stop()


#: The session's relay publishes *every* pending workflow in the test database, so it runs only
#: during tests that ask for it (``e2e``, ``outbox_relay``): a unit test's pending rows must not
#: be taken by the session's worker behind its back. conftest.py pauses it for the others.
_SESSION_RELAYS: list[Relay] = []


def pause_session_relays() -> None:
    for relay in _SESSION_RELAYS:
        relay.stop()


@pytest.fixture
def e2e(settings, e2e_sandbox, celery_worker, outbox_relay, worker_env):
    """Point this process (webhook, sweeper) at the same sandbox, broker and secret."""
    if not outbox_relay.running:  # paused by a test that needs no relay (conftest.py)
        outbox_relay.start()
    e2e_sandbox.reset()
    settings.HUBSPOT_ACCESS_TOKEN = e2e_sandbox.token
    settings.HUBSPOT_API_BASE_URL = e2e_sandbox.url
    settings.HUBSPOT_CLIENT_SECRET = "e2e-client-secret"
    settings.WORKFLOW_LEASE_SECONDS = 6
    return e2e_sandbox


def wait_for(predicate: Callable[[], object], timeout: float = 30, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


# --- Signed webhook deliveries ------------------------------------------------------------------

WEBHOOK_PATH = "/api/webhooks/hubspot/forms"


def form_body(
    fields: dict[str, str],
    *,
    form_id: str = "contact-us",
    page_uri: str | None = "https://example.com/contact",
) -> bytes:
    """A Forms-style delivery of one lead: ``fields`` in order, submitted now."""
    payload: dict = {
        "portalId": 62515,
        "formId": form_id,
        "submittedAt": int(time.time() * 1000),
        "fields": [{"name": name, "value": value} for name, value in fields.items()],
    }
    if page_uri is not None:
        payload["context"] = {"pageUri": page_uri}
    return json.dumps(payload).encode()


def signed_post(
    base_url: str, body: bytes | list | dict, *, secret: str | None = None, timeout: float = 10
) -> requests.Response:
    """POST ``body`` (bytes, or JSON) to the webhook at ``base_url``, signed (v3) with
    ``secret``; the test settings' HUBSPOT_CLIENT_SECRET unless given."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    url = f"{base_url}{WEBHOOK_PATH}"
    headers = signed_headers(
        secret=secret if secret is not None else settings.HUBSPOT_CLIENT_SECRET,
        version="v3",
        method="POST",
        uri=url,
        body=body,
    )
    return requests.post(
        url, data=body, timeout=timeout, headers={"Content-Type": "application/json", **headers}
    )
