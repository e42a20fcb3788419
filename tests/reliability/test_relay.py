"""The outbox relay under faults (issue #16): SIGKILLed mid-stream, its Redis cut, two at
once. No sweeper runs in these tests: the relay alone must get every workflow out, once."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from tests.e2e.proxy import CuttableProxy
from tests.harness import REPO, Relay, wait_for
from workflows.models import Status, Workflow
from workflows.relay import unpublished

from ._support import claims_per_workflow, drafts_per_workflow, ingest_leads
from .conftest import size

pytestmark = [pytest.mark.e2e, pytest.mark.reliability, pytest.mark.django_db(transaction=True)]


def assert_each_processed_once(ids: list[int]) -> None:
    statuses = set(Workflow.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert statuses == {Status.AWAITING_APPROVAL}
    assert claims_per_workflow(ids) == dict.fromkeys(ids, 1)
    assert drafts_per_workflow(ids) == dict.fromkeys(ids, 1)


def settled(ids: list[int]) -> bool:
    return Workflow.objects.filter(pk__in=ids, status=Status.AWAITING_APPROVAL).count() == len(ids)


def test_killing_the_relay_mid_stream_loses_nothing(e2e, outbox_relay):
    kills, per_round = size(10, 2), size(30, 8)
    ids: list[int] = []
    for _ in range(kills):
        ids += ingest_leads(e2e, per_round, prefix="relaykill")  # the relay publishes as they come
        outbox_relay.kill()  # SIGKILL, possibly inside a batch
        ids += ingest_leads(e2e, per_round // 2, prefix="relaykill")  # piles up meanwhile
        assert unpublished().filter(pk__in=ids).exists()
        outbox_relay.start()
    started = time.monotonic()
    wait_for(lambda: settled(ids), timeout=size(300, 90), every=0.5)
    print(f"\nrelay kills: {kills} SIGKILLs, {len(ids)} workflows, all settled "
          f"{time.monotonic() - started:.1f}s after the last restart")  # fmt: skip
    assert_each_processed_once(ids)


def test_a_relay_cut_off_from_redis_publishes_once_redis_returns(e2e, outbox_relay, worker_env):
    broker = urlsplit(worker_env["CELERY_BROKER_URL"])
    proxy = CuttableProxy(broker.port or 6379).start()
    log = REPO / "var" / "e2e-relay-proxied.log"
    log.unlink(missing_ok=True)
    proxied = Relay(
        {
            **worker_env,
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{proxy.port}{broker.path}",
            "OUTBOX_RELAY_POLL_SECONDS": "0.5",
        },
        log,
    )
    outbox_relay.stop()
    try:
        proxied.start()
        proxy.cut()
        ids = ingest_leads(e2e, size(100, 10), prefix="relaycut")
        time.sleep(size(10, 2))  # the relay tries, backs off, tries again
        assert unpublished().filter(pk__in=ids).count() == len(ids)  # nothing claimed as sent
        proxy.restore()
        restored = time.monotonic()
        wait_for(lambda: not unpublished().filter(pk__in=ids).exists(), timeout=30, every=0.2)
        published_after = time.monotonic() - restored
        wait_for(lambda: settled(ids), timeout=size(120, 60), every=0.5)
    finally:
        proxied.stop()
        proxy.cut()
        outbox_relay.start()
    print(f"\nrelay's Redis cut: {len(ids)} workflows published {published_after:.1f}s after "
          "Redis returned")  # fmt: skip
    assert published_after < 10
    assert proxied.published() == len(ids)
    assert_each_processed_once(ids)


def test_two_relays_publish_every_workflow_once(e2e, outbox_relay, worker_env):
    log = REPO / "var" / "e2e-relay-second.log"
    log.unlink(missing_ok=True)
    second = Relay({**worker_env, "OUTBOX_RELAY_POLL_SECONDS": "0.5"}, log)
    before = outbox_relay.published()
    second.start()
    try:
        ids = ingest_leads(e2e, size(300, 30), prefix="tworelays")
        wait_for(lambda: settled(ids), timeout=size(300, 90), every=0.5)
    finally:
        second.stop()
    first_count, second_count = outbox_relay.published() - before, second.published()
    print(f"\ntwo relays: {len(ids)} workflows, published {first_count} + {second_count}")
    assert first_count + second_count == len(ids)  # each published once
    assert_each_processed_once(ids)
