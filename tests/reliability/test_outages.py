"""Broker and database outages seen by the web process, cut with a TCP proxy in front of the
real Redis / PostgreSQL (the shared servers themselves are never stopped)."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from intake.models import FormSubmission
from tests.e2e.proxy import CuttableProxy
from tests.harness import GunicornServer, wait_for
from workflows.models import Status, Workflow

from ._support import post_lead, settled_count
from .conftest import size

pytestmark = [pytest.mark.e2e, pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

SECRET = "outage-client-secret"


def test_a_redis_outage_in_front_of_the_web_costs_ingestion_nothing(e2e, worker_env):
    """The webhook never talks to the broker (issue #16): the relay publishes from the outbox.
    With the web's Redis cut, every lead is still acknowledged and processed, no sweeper
    needed. (The relay's own Redis outage: tests/reliability/test_relay.py.)"""
    broker = urlsplit(worker_env["CELERY_BROKER_URL"])
    proxy = CuttableProxy(broker.port or 6379).start()
    env = {
        **worker_env,
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{proxy.port}{broker.path}",
        "HUBSPOT_CLIENT_SECRET": SECRET,
    }
    outage = size(30, 4)
    statuses, ids = [], []
    with GunicornServer(env) as web:
        proxy.cut()
        ends = time.monotonic() + outage
        while time.monotonic() < ends:  # a steady trickle of leads, 4 per second
            response = post_lead(web.url, SECRET)
            statuses.append(response.status_code)
            ids += response.json().get("submission_ids", [])
            time.sleep(0.25)
        wait_for(lambda: settled_count(ids) == len(ids), timeout=120, every=0.5)
        proxy.restore()
    print(f"\nweb's redis cut: {outage}s, {len(statuses)} webhooks, all processed during it")
    assert statuses and set(statuses) == {202}
    assert len(ids) == len(statuses)  # every acknowledged item is stored
    assert not Workflow.objects.filter(submission_id__in=ids, status=Status.FAILED).exists()


def test_a_postgresql_outage_answers_503_never_202_and_recovers_without_restart(e2e, worker_env):
    db = urlsplit(worker_env["DATABASE_URL"])
    proxy = CuttableProxy(db.port or 5432).start()
    env = {
        **worker_env,
        "DATABASE_URL": f"postgres://{db.username}@127.0.0.1:{proxy.port}{db.path}",
        "HUBSPOT_CLIENT_SECRET": SECRET,
    }
    with GunicornServer(env) as web:
        assert post_lead(web.url, SECRET).status_code == 202
        before = FormSubmission.objects.count()
        proxy.cut()
        during = [post_lead(web.url, SECRET) for _ in range(size(50, 6))]
        assert FormSubmission.objects.count() == before  # nothing stored, nothing acknowledged
        proxy.restore()
        after = wait_for(
            lambda: (r := post_lead(web.url, SECRET)).status_code == 202 and r, timeout=30
        )
    assert {r.status_code for r in during} == {503}
    assert all(r.headers.get("Retry-After") for r in during)
    assert FormSubmission.objects.count() == before + 1
    assert after.json()["accepted"] == 1
