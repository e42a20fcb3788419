"""Fixtures for the webhook tests: real signed requests, HubSpot's samples, a real broker."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import pools as kombu_pools

from config.celery_app import app as celery_app
from intake.signatures import signed_headers

HUBSPOT_SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "hubspot"
SECRET = "intake-test-client-secret"
WEBHOOK_PATH = "/api/webhooks/hubspot/forms"
UNREACHABLE_BROKER = "redis://127.0.0.1:6390/0"  # nothing listens there


def sample(name: str) -> bytes:
    return (HUBSPOT_SAMPLES / name).read_bytes()


def signature_headers(
    *,
    body: bytes,
    uri: str,
    version: str = "v3",
    secret: str = SECRET,
    method: str = "POST",
    timestamp_ms: int | None = None,
) -> dict[str, str]:
    return signed_headers(
        secret=secret, version=version, method=method, uri=uri, body=body, timestamp_ms=timestamp_ms
    )


@pytest.fixture
def webhook_settings(settings):
    settings.HUBSPOT_CLIENT_SECRET = SECRET
    settings.PUBLIC_BASE_URL = ""
    settings.WEBHOOK_MAX_AGE_SECONDS = 300
    return settings


@pytest.fixture
def post_webhook(client, webhook_settings) -> Callable[..., Any]:
    """POST a body signed the way HubSpot signs it; keyword options bend one thing at a time."""

    def post(
        body: bytes | list | dict,
        *,
        path: str = WEBHOOK_PATH,
        signed_uri: str | None = None,
        version: str = "v3",
        secret: str = SECRET,
        timestamp_ms: int | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        signed = signature_headers(
            body=body,
            uri=signed_uri or f"http://testserver{path}",
            version=version,
            secret=secret,
            timestamp_ms=timestamp_ms,
        )
        signed.update(headers or {})
        # The test client drops Content-Type for an empty body; a real client would send it.
        extra.setdefault("CONTENT_TYPE", content_type)
        return client.post(path, data=body, content_type=content_type, headers=signed, **extra)

    return post


def _drop_broker_pools() -> None:
    # The app caches its connection and producer pools; drop them so the next publish
    # connects to whatever the broker URL is now.
    # kombu also keeps process-wide pools keyed by connection: reset those too, or a later
    # publish picks up a closed one ("Acquire on closed pool").
    kombu_pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker_down(monkeypatch) -> Iterator[None]:
    # Celery reads CELERY_BROKER_URL from the environment before its own configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", UNREACHABLE_BROKER)
    _drop_broker_pools()
    assert celery_app.connection_for_write().as_uri() == UNREACHABLE_BROKER
    yield
    monkeypatch.undo()
    _drop_broker_pools()


@pytest.fixture
def broker_queue(settings) -> Iterator[redis.Redis]:
    """The Redis database of CELERY_BROKER_URL, its default queue emptied before and after."""
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs CELERY_BROKER_URL=redis://…")
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("celery")
    yield client
    client.delete("celery")
    client.close()


def queued_tasks(queue: redis.Redis) -> list[tuple[str, str]]:
    """(task name, argsrepr) of every message waiting in the default queue, oldest first."""
    messages = [json.loads(raw) for raw in reversed(queue.lrange("celery", 0, -1))]
    return [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in messages]
