"""Bulk replay: time ``workflows_replay`` for 10,000 failed workflows; target ≤ 10 s.

    .venv/bin/python bench/replay.py [--count 10000]

Seeds a fresh database ``leadline_bench_replay`` (INSERT … SELECT), then calls the service
the dashboard, admin, API and ``manage.py replay`` share, publishing to real Redis (db 8,
flushed afterwards). The service publishes fan-out messages (``workflows.enqueue_workflows``,
500 ids each); the bench then takes each from Redis and runs that task's function as a worker
would, so the figure includes every ``process_workflow`` publish. Nothing else consumes the
queue; at the end it must hold exactly one ``process_workflow`` message per replay.
"""

from __future__ import annotations

import argparse
import base64
import json
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


def queued(broker) -> list[tuple[bytes, str, object]]:
    """Every message waiting in the default queue: (raw, task name, first argument)."""
    messages = []
    for raw in broker.lrange("celery", 0, -1):
        message = json.loads(raw)
        first_arg = json.loads(base64.b64decode(message["body"]))[0][0]
        messages.append((raw, message["headers"]["task"], first_arg))
    return messages


def expand_fanouts(broker) -> int:
    """Pop each fan-out message and run its task function, as a worker would. Returns how many."""
    from workflows.services import FANOUT_TASK
    from workflows.tasks import enqueue_workflows

    fanouts = [(raw, ids) for raw, task, ids in queued(broker) if task == FANOUT_TASK]
    for raw, ids in fanouts:
        broker.lrem("celery", 1, raw)
        enqueue_workflows(ids)
    return len(fanouts)


def queued_ids(broker) -> list[int]:
    """The workflow id of every process_workflow message waiting in the queue."""
    messages = queued(broker)
    assert all(task == "workflows.process_workflow" for _, task, _ in messages)
    return [workflow_id for _, _, workflow_id in messages]


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
        replayed = time.perf_counter() - started
        fanouts = expand_fanouts(broker)
        elapsed = time.perf_counter() - started
        published = queued_ids(broker)
        once = sorted(published) == sorted(result.created)
        timings.append(elapsed)
        rows.append([run, len(ids), len(result.created), fanouts, len(published), verdict(once),
                     f"{replayed:.2f}", f"{elapsed:.2f}", f"{len(ids) / elapsed:.0f}"])  # fmt: skip
        Workflow.objects.filter(trigger=Trigger.REPLAY).delete()
    connection.close()
    flush_broker()
    print_table(
        ["run", "failed", "replays created", "fan-out msgs", "process msgs", "each once",
         "service s", "total s", "workflows/s"],
        rows,
    )  # fmt: skip
    median = sorted(timings)[len(timings) // 2]
    ok = median <= 10 and all(r[2] == r[4] == args.count and r[5] == "PASS" for r in rows)
    print(
        f"\n{verdict(ok)}  replay of {args.count} failed workflows, every process_workflow "
        f"message published: median {median:.2f} s (target ≤ 10 s), each replay once"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
