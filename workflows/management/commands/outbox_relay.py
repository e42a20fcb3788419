"""``manage.py outbox_relay``: the outbox relay process (workflows/relay.py)."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from workflows.relay import Relay


class Command(BaseCommand):
    help = (
        "Publish new workflows to Celery from the outbox (pending, not yet published), woken by "
        "PostgreSQL LISTEN/NOTIFY with a poll as fallback. Safe to run more than one. "
        "SIGTERM/SIGINT stop it after the current batch."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=None, help="rows per batch")
        parser.add_argument(
            "--poll-seconds", type=float, default=None, help="longest wait between polls"
        )

    def handle(self, *args, **options) -> None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        Relay(
            batch_size=options["batch_size"], poll_seconds=options["poll_seconds"], stop=stop
        ).run()
