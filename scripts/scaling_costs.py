#!/usr/bin/env python
"""Per-lead costs behind docs/scaling.md's capacity model, measured in one process.

    DATABASE_URL=postgres://…/leadline_costs CELERY_BROKER_URL=redis://127.0.0.1:6379/N \
        .venv/bin/python scripts/scaling_costs.py [--leads 300] [--latency-ms 50]

Not a bench (bench/ measures throughput under load): this counts what one lead costs, serially,
so that the figures do not depend on how busy the machine is.

- web: CPU per signed webhook (Django's request cycle in-process, one submission) ;
- relay: CPU per workflow published, one per wake (steady trickle) and in batches of 500;
- worker: CPU and wall time per workflow from pending to awaiting approval, known contacts,
  the HubSpot sandbox (a subprocess) answering each call after --latency-ms;
- PostgreSQL: rows written (inserted + updated + deleted) and commits per lead, per phase,
  from pg_stat (this process is the only client of the database).

It migrates the database it is given and leaves the rows there: give it an empty scratch
database (it refuses one with workflows), never one a bench or a test uses. The broker's
default queue is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=300)
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("DATABASE_URL must point at a scratch PostgreSQL database")
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"):
        sys.exit("CELERY_BROKER_URL must be redis://…")

    port = _free_port()
    token = "costs-token"  # noqa: S105 - the local sandbox's
    os.environ.update(
        HUBSPOT_ACCESS_TOKEN=token,
        HUBSPOT_API_BASE_URL=f"http://127.0.0.1:{port}",
        HUBSPOT_CLIENT_SECRET="costs-secret",  # noqa: S106 - signs local requests only
        HUBSPOT_RATE_LIMIT_PER_10S="1000000",
        HUBSPOT_SEARCH_RATE_PER_S="100000",
    )
    sandbox = subprocess.Popen(
        [sys.executable, "manage.py", "hubspot_sandbox", "--port", str(port), "--token", token,
         "--latency-ms", str(args.latency_ms)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from workflows.models import Workflow

        if Workflow.objects.exists():  # the sandbox's contact ids restart with every run
            sys.exit("use an empty scratch database: this one has workflows already")
        _wait_for_port(port)
        _run(args.leads, port, token, args.latency_ms)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


def _run(leads: int, port: int, token: str, latency_ms: int) -> None:
    import redis
    import requests
    from django.conf import settings
    from django.test import Client

    from intake.signatures import signed_headers
    from workflows import pipeline
    from workflows.models import Status, Workflow
    from workflows.relay import relay_batch, unpublished

    emails = [f"costs-{uuid.uuid4().hex[:10]}@example.com" for _ in range(leads)]
    requests.post(
        f"http://127.0.0.1:{port}/__sandbox__/contacts",
        json={"contacts": [{"email": e, "firstname": "Cora"} for e in emails]},
        timeout=30,
    ).raise_for_status()
    client = Client()
    path = "/api/webhooks/hubspot/forms"
    bodies = [
        json.dumps({"portalId": 62515, "formId": "costs", "submittedAt": int(time.time() * 1000),
                    "fields": [{"name": "email", "value": e}]}).encode()
        for e in emails
    ]  # fmt: skip
    results = {}

    # web: the webhook, one submission per request
    before = _pg_stats()
    cpu = time.process_time()
    for body in bodies:
        headers = signed_headers(
            secret=settings.HUBSPOT_CLIENT_SECRET, version="v3", method="POST",
            uri=f"http://testserver{path}", body=body,
        )  # fmt: skip
        response = client.post(path, data=body, content_type="application/json", headers=headers)
        assert response.status_code == 202, response.content
    results["web"] = (time.process_time() - cpu) / leads, _delta(before, _pg_stats(), leads)

    # relay: half one per wake (a trickle), half in one batch (a burst)
    ids = list(unpublished().order_by("created_at").values_list("pk", flat=True))
    assert len(ids) == leads, len(ids)
    trickle = leads // 2
    before = _pg_stats()
    cpu = time.process_time()
    for _ in range(trickle):
        assert relay_batch(batch_size=1).published == 1
    results["relay, 1 per wake"] = (
        (time.process_time() - cpu) / trickle,
        _delta(before, _pg_stats(), trickle),
    )
    before = _pg_stats()
    cpu = time.process_time()
    burst = relay_batch(batch_size=500).published
    results[f"relay, batch of {burst}"] = (
        (time.process_time() - cpu) / burst,
        _delta(before, _pg_stats(), burst),
    )
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("celery")

    # worker: each workflow from pending to awaiting approval, serially
    before = _pg_stats()
    cpu, wall = time.process_time(), time.monotonic()
    for workflow_id in ids:
        for _ in range(12):
            try:
                pipeline.run_workflow(workflow_id, task_id=f"costs-{workflow_id}")
                break
            except pipeline.RetryLater as retry:
                time.sleep(retry.countdown)
            except pipeline.StepFailed:
                break
    worker_cpu, worker_wall = time.process_time() - cpu, time.monotonic() - wall
    results["worker"] = worker_cpu / leads, _delta(before, _pg_stats(), leads)
    settled = Workflow.objects.filter(pk__in=ids, status=Status.AWAITING_APPROVAL).count()
    calls = requests.get(f"http://127.0.0.1:{port}/__sandbox__/requests", timeout=30).json()
    crm_calls = len(calls.get("requests", calls)) if isinstance(calls, dict) else len(calls)

    print(f"\n{leads} leads, known contacts, sandbox latency {latency_ms} ms; "
          f"{settled}/{leads} awaiting approval; {crm_calls / leads:.2f} HubSpot calls per lead; "
          f"worker wall {1000 * worker_wall / leads:.0f} ms per workflow (serial)\n")  # fmt: skip
    print("| phase | CPU ms per lead | PostgreSQL rows written per lead | commits per lead |")
    print("|---|---|---|---|")
    for phase, (seconds, (rows, commits)) in results.items():
        print(f"| {phase} | {1000 * seconds:.2f} | {rows:.1f} | {commits:.1f} |")


def _pg_stats() -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
        )
        rows = int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        return rows, int(cursor.fetchone()[0])


def _delta(before: tuple[int, int], after: tuple[int, int], n: int) -> tuple[float, float]:
    # each _pg_stats call itself commits 4 autocommit statements; take them out
    return (after[0] - before[0]) / n, (after[1] - before[1] - 4) / n


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the HubSpot sandbox did not start")


if __name__ == "__main__":
    main()
