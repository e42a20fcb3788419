"""Workflow throughput through real Celery workers against the HubSpot sandbox at 50 ms/call.

    .venv/bin/python bench/pipeline.py [--count 300] [--latency-ms 50]

For each worker configuration (threads 8, prefork 2, 4 and 8): a fresh worker subprocess
on real Redis (db 8) and a fresh database ``leadline_bench_pipeline``; ``count`` form
submissions are ingested in one burst through ``submissions_ingest`` (the webhook's service);
the bench waits until every workflow is awaiting approval. Rate limits are raised so that only
the sandbox latency and the worker concurrency bind. Every lead is a known contact (seeded in
the sandbox), so a workflow makes a fixed number of calls, counted from the sandbox log.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import (
    BROKER,
    PY,
    REPO,
    bench_env,
    flush_broker,
    machine,
    migrate,
    percentile,
    print_table,
    recreate_database,
    verdict,
)

DB = "leadline_bench_pipeline"
CONFIGS = [("threads", 8), ("prefork", 2), ("prefork", 4), ("prefork", 8)]


def rss_mb(pid: int) -> list[float]:
    """VmRSS of the process and its children, in MB (psutil is not installed)."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    sizes = []
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


def start_worker(env: dict[str, str], pool: str, concurrency: int, log: Path):
    log.parent.mkdir(parents=True, exist_ok=True)
    out = log.open("wb")
    proc = subprocess.Popen(
        [PY, "-m", "celery", "-A", "config", "worker", "--pool", pool,
         "--concurrency", str(concurrency), "--without-gossip", "--without-mingle",
         "--without-heartbeat", "--loglevel", "WARNING", "-Q", "celery",
         "--hostname", f"bench-{pool}-{concurrency}@%h"],
        cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return proc


def run_config(args, pool: str, concurrency: int) -> dict:
    import redis
    from django.db import connection

    from intake.payloads import parse_body
    from intake.services import submissions_ingest
    from workflows.models import AuditEvent, Status, Workflow
    from workflows.sandbox import SandboxServer

    url = recreate_database(DB)
    env = bench_env(
        url,
        CELERY_BROKER_URL=BROKER,
        HUBSPOT_RATE_LIMIT_PER_10S="1000000",
        HUBSPOT_SEARCH_RATE_PER_S="100000",
        WORKFLOW_RETRY_BASE_SECONDS="1",
        LOG_LEVEL="warning",
    )
    migrate(env)
    connection.close()
    flush_broker()
    with SandboxServer(
        token="bench-token",  # noqa: S106
        latency_ms=args.latency_ms,
        # Its rate-limit headers must match the raised client limits: with the default
        # header (100 per 10 s) the client would rightly slow down to stay under it.
        rate_limit=1_000_000,
    ) as sandbox:
        env.update(HUBSPOT_ACCESS_TOKEN=sandbox.token, HUBSPOT_API_BASE_URL=sandbox.url)
        run = f"{pool}{concurrency}"
        emails = [f"lead{n}-{run}@bench.example.com" for n in range(args.count)]
        for email in emails:
            sandbox.seed_contact(email=email, firstname="Bench", company="Bench Co")
        log = REPO / "var" / "bench" / f"worker-{run}.log"
        worker = start_worker(env, pool, concurrency, log)
        try:
            time.sleep(6)  # let the worker connect before the burst
            if worker.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:])
            from django.utils import timezone

            started = time.monotonic()
            for email in emails:
                body = (
                    '{"portalId":62515,"formId":"bench","fields":[{"name":"email","value":"'
                    + email
                    + '"},{"name":"firstname","value":"Bench"}]}'
                ).encode()
                submissions_ingest(
                    items=parse_body(body, query={}),
                    signature_version="v3",
                    received_at=timezone.now(),
                )
            deadline = started + args.timeout
            done = 0
            while time.monotonic() < deadline:
                done = Workflow.objects.filter(
                    status__in=[Status.AWAITING_APPROVAL, Status.FAILED]
                ).count()
                if done >= args.count:
                    break
                time.sleep(0.2)
            elapsed = time.monotonic() - started
            memory = rss_mb(worker.pid)
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        calls = len(sandbox.requests())
    awaiting = Workflow.objects.filter(status=Status.AWAITING_APPROVAL).count()
    lags = []
    for event in AuditEvent.objects.filter(to_status=Status.AWAITING_APPROVAL).select_related(
        "workflow__submission"
    ):
        lags.append((event.created_at - event.workflow.submission.received_at).total_seconds())
    first = Workflow.objects.order_by("started_at").values_list("started_at", flat=True).first()
    last = AuditEvent.objects.filter(to_status=Status.AWAITING_APPROVAL).order_by("-created_at")
    last_at = last.values_list("created_at", flat=True).first()
    busy = (last_at - first).total_seconds() if first and last_at else elapsed
    connection.close()
    redis.Redis.from_url(BROKER).flushdb()
    per_workflow_calls = calls / max(1, args.count)
    bound = concurrency / (per_workflow_calls * args.latency_ms / 1000)
    return {
        "config": f"{pool} {concurrency}",
        "done": done,
        "awaiting": awaiting,
        "elapsed": elapsed,
        "rate": awaiting / busy if busy else 0,
        "calls_per_workflow": per_workflow_calls,
        "bound": bound,
        "s2l_p50": percentile(lags, 50),
        "s2l_p99": percentile(lags, 99),
        "rss": memory,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--config", action="append", help="pool:concurrency, e.g. threads:8")
    args = parser.parse_args()
    configs = [(c.split(":")[0], int(c.split(":")[1])) for c in args.config or []] or CONFIGS
    print(f"machine: {machine()}")
    os.environ.update(bench_env(f"postgres://postgres@127.0.0.1:5432/{DB}"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    recreate_database(DB)
    import django

    django.setup()
    results = [run_config(args, pool, c) for pool, c in configs]
    rows = [
        [r["config"], f"{r['awaiting']}/{args.count}", f"{r['calls_per_workflow']:.2f}",
         f"{r['rate']:.1f}", f"{r['bound']:.1f}", f"{r['rate'] / r['bound']:.0%}",
         f"{r['s2l_p50']:.2f}", f"{r['s2l_p99']:.2f}",
         " + ".join(f"{m:.0f}" for m in r["rss"])]
        for r in results
    ]  # fmt: skip
    print()
    print_table(
        ["worker", "awaiting", "calls/wf", "workflows/s", "bound C÷(callsxlatency)",
         "of bound", "speed-to-lead p50 s", "p99 s", "RSS MB (main + children)"],
        rows,
    )  # fmt: skip
    ok_all = all(r["awaiting"] == args.count for r in results)
    ok_mem = all(max(r["rss"] or [0]) <= 200 for r in results)
    print(f"\n{verdict(ok_all)}  every workflow reached awaiting_approval")
    print(f"{verdict(ok_mem)}  worker RSS ≤ 200 MB per process")
    print(
        f"speed-to-lead is measured under a burst of {args.count} submissions at once, so its "
        "p99 is mostly queueing: count ÷ workflows/s"
    )
    return 0 if ok_all and ok_mem else 1


if __name__ == "__main__":
    sys.exit(main())
