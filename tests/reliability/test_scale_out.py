"""Scale-out (issue #16): two worker "hosts" and two relays against one PostgreSQL and Redis,
directly and through PgBouncer in transaction pooling mode.

Each host is its own prefork ``celery worker`` with a distinct hostname and no beat; each relay
is its own ``manage.py outbox_relay``. The session's worker and relay are stopped meanwhile, so
these four processes (and a gunicorn web) are all there is. Every workflow must be claimed,
drafted and given a CRM task exactly once, and the shared HubSpot throttle must hold across
the hosts: the sandbox's request times never run ahead of HUBSPOT_RATE_LIMIT_PER_10S.

Through PgBouncer, web, workers and one relay use the pooled URL with DATABASE_POOLER=pgbouncer
(no prepared statements, no server-side cursors); the other relay LISTENs on
DATABASE_DIRECT_URL, and the first one, which has none, polls. Smoke size in ``make test``,
full size (and the per-lead costs behind docs/scaling.md) in ``make reliability``.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest
from django.db import connection

from tests.harness import REPO, GunicornServer, Relay, Worker, wait_for
from workflows.hubspot.client import task_marker_token
from workflows.models import Status, Workflow

from ._pgbouncer import PgBouncer
from ._support import (
    claims_per_workflow,
    drafts_per_workflow,
    post_lead,
    tree_cpu_seconds,
)
from .conftest import FULL, size

pytestmark = [pytest.mark.e2e, pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

SECRET = "scale-out-client-secret"
RATE_PER_10S = 60  # 6 calls/s shared by both hosts: the throttle, not the hosts, sets the pace


def db_writes() -> tuple[int, int]:
    """(rows inserted + updated + deleted in this database, commits) so far."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
        )
        rows = cursor.fetchone()[0]
        cursor.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        return int(rows), int(cursor.fetchone()[0])


def throttle_overruns(times: list[float], rate: float, windows=(1.0, 2.0, 5.0, 10.0)) -> list:
    """Windows in which more calls reached the sandbox than the token bucket allows: rate x the
    window, plus its one-token capacity, plus one for the spread between taking a token and
    the request arriving."""
    overruns = []
    times = sorted(times)
    for window in windows:
        allowed = rate * window + 2
        start = 0
        for end, t in enumerate(times):
            while t - times[start] > window:
                start += 1
            if end - start + 1 > allowed:
                overruns.append((window, end - start + 1, allowed))
                break
    return overruns


@pytest.mark.parametrize("pooler", ["direct", "pgbouncer"])
def test_two_worker_hosts_and_two_relays_process_each_workflow_once_within_the_throttle(
    pooler, e2e, celery_worker, outbox_relay, worker_env
):
    leads = size(90, 12)
    db = urlsplit(worker_env["DATABASE_URL"])
    env = {
        **worker_env,
        "HUBSPOT_CLIENT_SECRET": SECRET,
        "HUBSPOT_RATE_LIMIT_PER_10S": str(RATE_PER_10S),
        "OUTBOX_RELAY_POLL_SECONDS": "0.5",
    }
    relay_envs = [dict(env), dict(env)]
    bouncer = None
    if pooler == "pgbouncer":
        bouncer = PgBouncer(db.hostname or "127.0.0.1", db.port or 5432).start()
        env.update(
            DATABASE_URL=f"postgres://{db.username}@127.0.0.1:{bouncer.port}{db.path}",
            DATABASE_POOLER="pgbouncer",
        )
        relay_envs = [dict(env), {**env, "DATABASE_DIRECT_URL": worker_env["DATABASE_URL"]}]
    tag = f"{pooler}-{os.getpid()}"
    hosts = [
        Worker(env, REPO / "var" / f"scale-host-{name}.log", hostname=f"{name}-{tag}@%h",
               concurrency=2)
        for name in ("host-a", "host-b")
    ]  # fmt: skip
    relays = [
        Relay(relay_env, REPO / "var" / f"scale-relay-{i}.log")
        for i, relay_env in enumerate(relay_envs)
    ]
    for process in [*hosts, *relays]:
        process.log_path.unlink(missing_ok=True)
    outbox_relay.stop()
    celery_worker.stop()
    try:
        for process in [*hosts, *relays]:
            process.start()
        with GunicornServer(env) as web:
            e2e.reset()
            emails = [f"scale-{tag}-{i}@example.com" for i in range(leads)]
            for email in emails:
                e2e.seed_contact(email=email, firstname="Sam")
            writes_before = db_writes()
            cpu_before = {p: tree_cpu_seconds(p.proc.pid) for p in [*hosts, *relays]}
            web_cpu_before = tree_cpu_seconds(web.proc.pid)
            started = time.monotonic()
            submissions = []
            for email in emails:
                response = post_lead(web.url, SECRET, email=email)
                assert response.status_code == 202, response.text
                submissions += response.json()["submission_ids"]
            web_cpu = tree_cpu_seconds(web.proc.pid) - web_cpu_before
        ids = list(
            Workflow.objects.filter(submission_id__in=submissions).values_list("pk", flat=True)
        )
        wait_for(
            lambda: Workflow.objects.filter(pk__in=ids, status=Status.AWAITING_APPROVAL).count()
            == len(ids),
            timeout=size(240, 90),
            every=0.5,
        )
        elapsed = time.monotonic() - started
        cpu = {p: tree_cpu_seconds(p.proc.pid) - cpu_before[p] for p in [*hosts, *relays]}
        if FULL:
            time.sleep(11)  # PostgreSQL flushes an idle backend's statistics within 10 s
        writes_after = db_writes()
        pool_stats = bouncer.show("STATS") if bouncer else []
    finally:
        for process in [*relays, *hosts]:
            process.stop()
        if bouncer:
            bouncer.stop()
        celery_worker.start()
        outbox_relay.start()

    # every workflow once: claimed once, one draft, one CRM task
    assert len(ids) == leads
    assert claims_per_workflow(ids) == dict.fromkeys(ids, 1)
    assert drafts_per_workflow(ids) == dict.fromkeys(ids, 1)
    markers = Counter()
    for stored in e2e.state.tasks.values():
        body = stored.object["properties"].get("hs_task_body", "")
        markers.update(wf for wf in ids if task_marker_token(f"workflow-{wf}") in body)
    assert markers == dict.fromkeys(ids, 1)
    # published once, by the two relays between them; both hosts did work
    assert sum(r.published() for r in relays) == leads
    done_by = [
        sum(
            "workflows.process_workflow[" in line and "succeeded" in line
            for line in h.log_path.read_text().splitlines()
        )
        for h in hosts
    ]
    assert all(done_by), done_by
    # the throttle held across hosts
    calls = [r for r in e2e.requests() if not r.path.startswith("/__sandbox__")]
    assert not [r for r in calls if r.status == 429]
    assert throttle_overruns([r.time for r in calls], RATE_PER_10S / 10) == []
    if bouncer:
        assert sum(int(row["total_xact_count"]) for row in pool_stats) > 0  # it did carry them

    rows, commits = (a - b for a, b in zip(writes_after, writes_before, strict=True))
    worker_cpu = sum(cpu[h] for h in hosts)
    relay_cpu = sum(cpu[r] for r in relays)
    print(
        f"\nscale-out ({pooler}): {leads} leads, 2 hosts x prefork 2, 2 relays, "
        f"{len(calls)} HubSpot calls ({len(calls) / leads:.1f}/lead) in {elapsed:.1f}s at "
        f"{RATE_PER_10S}/10s; tasks per host {done_by}; relays published "
        f"{[r.published() for r in relays]}\n"
        f"  CPU per lead: web {1000 * web_cpu / leads:.1f} ms, workers "
        f"{1000 * worker_cpu / leads:.1f} ms, relays {1000 * relay_cpu / leads:.1f} ms"
        + (f"; PostgreSQL per lead: {rows / leads:.1f} row writes, {commits / leads:.1f} commits"
           if FULL else "")
    )  # fmt: skip


def test_the_throttle_check_itself_catches_an_overrun():
    assert throttle_overruns([0.1 * i for i in range(20)], rate=6.0)  # 10 calls/s against 6
    assert throttle_overruns([i / 6 for i in range(60)], rate=6.0) == []
