"""Bulk replay: time ``workflows_replay`` for 10,000 failed workflows; target ≤ 10 s.

    .venv/bin/python bench/replay.py [--count 10000]

Seeds a fresh database ``leadline_bench_replay`` (INSERT … SELECT), then calls the service
the dashboard, admin, API and ``manage.py replay`` share, publishing every message to real
Redis (db 8, flushed afterwards). Nothing consumes the messages.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import (
    BROKER,
    bench_env,
    flush_broker,
    machine,
    migrate,
    print_table,
    recreate_database,
    seed_workflows,
    verdict,
)

DB = "leadline_bench_replay"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    url = recreate_database(DB)
    env = bench_env(url, LOG_LEVEL="warning")
    migrate(env)
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    import psycopg
    import redis
    from django.db import connection

    from workflows.models import Status, Trigger, Workflow
    from workflows.services import workflows_replay

    with psycopg.connect(url, autocommit=True) as conn:
        seed_workflows(conn, args.count, status="failed")
        conn.execute("ANALYZE")
    broker = redis.Redis.from_url(BROKER)
    rows = []
    timings = []
    for run in range(1, args.runs + 1):
        flush_broker()
        ids = list(
            Workflow.objects.filter(status=Status.FAILED, trigger=Trigger.WEBHOOK)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        started = time.perf_counter()
        result = workflows_replay(workflow_ids=ids, actor="bench", reason="bench")
        elapsed = time.perf_counter() - started
        queued = broker.llen("celery")
        stamped = Workflow.objects.filter(pk__in=result.created, enqueued_at__isnull=False).count()
        timings.append(elapsed)
        rows.append([run, len(ids), len(result.created), queued, stamped, f"{elapsed:.2f}",
                     f"{len(ids) / elapsed:.0f}"])  # fmt: skip
        Workflow.objects.filter(trigger=Trigger.REPLAY).delete()
    connection.close()
    flush_broker()
    print_table(
        ["run", "failed", "replays created", "messages in Redis", "enqueued_at set", "seconds",
         "workflows/s"],
        rows,
    )  # fmt: skip
    median = sorted(timings)[len(timings) // 2]
    ok = median <= 10 and all(r[2] == r[3] == r[4] == args.count for r in rows)
    print(f"\n{verdict(ok)}  replay of {args.count} failed workflows: median {median:.2f} s "
          f"(target ≤ 10 s), every replay published once")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
