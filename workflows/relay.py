"""The outbox relay: publishes new workflows to Celery, off the webhook's request path.

The webhook stores a submission and its ``pending`` workflow in one statement and returns. A
pending workflow whose ``enqueued_at`` is empty is the outbox: nothing has published it yet.
The relay (``manage.py outbox_relay``, its own process in the Procfile and compose) claims such
rows in batches with ``SELECT … FOR UPDATE SKIP LOCKED``, publishes them while it holds the
row locks, and stamps ``enqueued_at`` in the same transaction. Hence:

- two relays never publish the same row: the second skips rows the first has locked, and
  finds them stamped once the first commits;
- a relay killed mid-batch published nothing that is stamped; its rows are unlocked when its
  connection dies and the next relay publishes them again (a workflow's claim is idempotent,
  so a repeated message never runs a workflow twice);
- a broker outage stamps only what went out (``workflows_publish`` returns that prefix); the
  rest stays in the outbox, and the relay retries with a backoff until the broker is back.

It wakes on PostgreSQL ``NOTIFY`` (a statement trigger on ``workflows`` sends one on the
``leadline_outbox`` channel with every insert, delivered at commit; migration 0006) and polls
every OUTBOX_RELAY_POLL_SECONDS as a fallback. It cannot LISTEN through a transaction pooler:
with DATABASE_POOLER=pgbouncer it listens on DATABASE_DIRECT_URL when set, and otherwise polls
(docs/scaling.md). On SQLite (``make run``'s default) it polls; SQLite's IMMEDIATE transactions
serialise two relays.

The sweeper remains the safety net: it publishes pending rows older than
SWEEPER_PENDING_AFTER_SECONDS, stamped or not, so a dead relay delays work, never loses it.
The relay's lag (age of the oldest unpublished workflow) is the gauge
``leadline_outbox_lag_seconds`` (config/metrics.py) and alerts past OUTBOX_LAG_ALERT_SECONDS
(workflows/alerts.py).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import environ
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Min, QuerySet
from django.utils import timezone

from workflows import metrics
from workflows.models import Status, Workflow
from workflows.services import workflows_publish

log = logging.getLogger("leadline.relay")

CHANNEL = "leadline_outbox"
#: The longest a relay waits between attempts while the broker or the database is down.
MAX_BACKOFF_SECONDS = 5.0


def unpublished() -> QuerySet[Workflow]:
    """The outbox: pending workflows nobody has published yet."""
    return Workflow.objects.filter(status=Status.PENDING, enqueued_at__isnull=True)


def outbox_lag_seconds(now: datetime | None = None) -> float:
    """Age of the oldest unpublished workflow; 0 when the outbox is empty."""
    oldest = unpublished().aggregate(oldest=Min("created_at"))["oldest"]
    if oldest is None:
        return 0.0
    return max(0.0, ((now or timezone.now()) - oldest).total_seconds())


@dataclass(frozen=True)
class BatchResult:
    claimed: int
    published: int

    @property
    def broker_failed(self) -> bool:
        return self.published < self.claimed


def relay_batch(batch_size: int | None = None) -> BatchResult:
    """Publish one batch of the outbox, oldest first; returns what was claimed and published.

    The rows stay locked while their messages are published, and are stamped in the same
    transaction, so a concurrent relay neither waits for them nor publishes them again.
    """
    size = batch_size or settings.OUTBOX_RELAY_BATCH_SIZE
    with transaction.atomic():
        ids = list(
            unpublished()
            .select_for_update(skip_locked=True)
            .order_by("created_at")
            .values_list("pk", flat=True)[:size]
        )
        if not ids:
            return BatchResult(0, 0)
        published = workflows_publish(ids)
        if published:
            Workflow.objects.filter(pk__in=ids[:published]).update(enqueued_at=timezone.now())
    metrics.OUTBOX_PUBLISHED.inc(published)
    if published < len(ids):
        metrics.OUTBOX_PUBLISH_FAILURES.inc()
    # One line per batch: the reliability tests add them up to show each row went out once.
    log.info("Outbox batch published", extra={"claimed": len(ids), "published": published})
    return BatchResult(len(ids), published)


def listen_params() -> dict[str, Any] | None:
    """Connection parameters for the LISTEN connection, or None when the relay must poll.

    PostgreSQL only. Through a transaction pooler (DATABASE_POOLER=pgbouncer) a LISTEN would
    be bound to whichever server connection ran it, so the relay listens on
    DATABASE_DIRECT_URL when that is set, and otherwise polls.
    """
    if connection.vendor != "postgresql":
        return None
    if settings.DATABASE_DIRECT_URL:
        db = environ.Env.db_url_config(settings.DATABASE_DIRECT_URL)
    elif settings.DATABASE_POOLER:
        return None
    else:
        db = connection.settings_dict
    params = {
        "dbname": db.get("NAME"),
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "connect_timeout": 5,
    }
    return {key: value for key, value in params.items() if value is not None}


class Listener:
    """A dedicated autocommit connection that LISTENs on CHANNEL; reconnects when it drops.
    After a failed connect it waits RECONNECT_SECONDS before the next try (the relay polls
    meanwhile), so an unreachable server does not slow every pass by its connect timeout."""

    RECONNECT_SECONDS = 30.0

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.conn: Any = None
        self.retry_at = 0.0

    def connect(self) -> bool:
        import psycopg

        if time.monotonic() < self.retry_at:
            return False
        try:
            self.conn = psycopg.connect(**self.params, autocommit=True)
            self.conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            log.warning("Outbox relay cannot LISTEN; polling", extra={"error": type(exc).__name__})
            self.close()
            self.retry_at = time.monotonic() + self.RECONNECT_SECONDS
            return False
        return True

    def wait(self, timeout: float) -> bool:
        """Block until a notification or ``timeout``; True if woken by a notification.
        Notifications already queued are drained, so a burst of commits wakes the relay once."""
        import psycopg

        if self.conn is None and not self.connect():
            time.sleep(timeout)
            return False
        try:
            woken = any(True for _ in self.conn.notifies(timeout=timeout, stop_after=1))
            if woken:
                for _ in self.conn.notifies(timeout=0.001):
                    pass
            return woken
        except psycopg.Error as exc:
            log.warning("Outbox relay lost its LISTEN", extra={"error": type(exc).__name__})
            self.close()
            return False

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


class Relay:
    """The relay's loop: publish while there is work, then wait for a NOTIFY or the poll."""

    def __init__(
        self,
        *,
        batch_size: int | None = None,
        poll_seconds: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.batch_size = batch_size or settings.OUTBOX_RELAY_BATCH_SIZE
        self.poll_seconds = poll_seconds or settings.OUTBOX_RELAY_POLL_SECONDS
        self.stop = stop or threading.Event()
        params = listen_params()
        self.listener = Listener(params) if params else None

    def run(self) -> None:
        listening = self.listener is not None and self.listener.connect()
        log.info(
            "Outbox relay started",
            extra={
                "wake": "listen/notify + poll" if listening else "poll",
                "poll_seconds": self.poll_seconds,
                "batch_size": self.batch_size,
            },
        )
        backoff = 0.0
        try:
            while not self.stop.is_set():
                try:
                    result = relay_batch(self.batch_size)
                except DatabaseError as exc:
                    log.warning("Outbox relay: database error", extra={"error": type(exc).__name__})
                    connection.close()
                    backoff = min(MAX_BACKOFF_SECONDS, max(0.25, backoff * 2))
                    self.stop.wait(backoff)
                    continue
                if result.broker_failed:
                    backoff = min(MAX_BACKOFF_SECONDS, max(0.25, backoff * 2))
                    self.stop.wait(backoff)
                    continue
                backoff = 0.0
                if result.claimed >= self.batch_size:
                    continue  # more waiting: no sleep
                self._wait()
        finally:
            if self.listener is not None:
                self.listener.close()
            log.info("Outbox relay stopped")

    def _wait(self) -> None:
        """Until a NOTIFY, the poll interval, or a stop (checked at least once a second)."""
        if self.listener is None:
            self.stop.wait(self.poll_seconds)
            return
        deadline = time.monotonic() + self.poll_seconds
        while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if self.listener.wait(min(1.0, left)):
                return
