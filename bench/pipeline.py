"""Workflow throughput through real Celery workers against the HubSpot sandbox at 50 ms/call.

    .venv/bin/python bench/pipeline.py [--count 300] [--latency-ms 50]

For each worker configuration (threads 8, prefork 2, 4 and 8): a fresh worker subprocess
on real Redis (db 8) and a fresh database ``leadline_bench_pipeline``; ``count`` form
submissions are ingested in one burst through ``submissions_ingest`` (the webhook's service);
the bench waits until every workflow is awaiting approval. ``--bursts`` such bursts (3) run
one after the other on the same worker, and the verdict is on the median rate (the machine is
shared and noisy); a pool no deployment runs gets one. Then ``--paced-count`` more arrive
one by one at half the rate the median burst reached, for speed to lead without a queue: every
other one a known contact (seeded in the sandbox), the others new to HubSpot (nobody creates
their contact: Leadline drafts at once, and attaches the contact it creates after the last
index-lag search, in the background). Speed to lead is reported for each kind. Rate limits
are raised so that only the sandbox latency and the worker concurrency bind. Every burst lead
is a known contact, so a burst workflow makes a fixed number of calls, counted from the
sandbox log when the burst is done.
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
#: Pools no deployment runs (Procfile: prefork 4; compose: prefork 8), measured and shown but
#: left out of the verdicts. Celery's thread pool on the Redis broker takes a new message only
#: every second or so once its prefetch is used up (celery/celery#6941, #7718): ~1 workflow/s.
NOT_DEPLOYED = {("threads", 8)}


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


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process and its children, in seconds."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / TICKS


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU clock ticks of the whole machine since boot, every process included
    (the worker, PostgreSQL, Redis, the sandbox and the bench itself), from /proc/stat."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks[:8]) - idle, sum(ticks[:8])


def ingest(emails: list[str], pause: float = 0.0) -> None:
    """Each email as one form submission through the webhook's service, ``pause`` s apart."""
    from django.utils import timezone

    from intake.payloads import parse_body
    from intake.services import submissions_ingest

    for email in emails:
        body = (
            '{"portalId":62515,"formId":"bench","fields":[{"name":"email","value":"'
            + email
            + '"},{"name":"firstname","value":"Bench"}]}'
        ).encode()
        submissions_ingest(
            items=parse_body(body, query={}), signature_version="v3", received_at=timezone.now()
        )
        if pause:
            time.sleep(pause)


def speed_to_lead(emails: list[str]) -> list[float]:
    """Seconds from receipt to awaiting_approval, for these leads' workflows."""
    from workflows.models import AuditEvent, Status

    events = AuditEvent.objects.filter(
        to_status=Status.AWAITING_APPROVAL, workflow__submission__email__in=emails
    ).select_related("workflow__submission")
    return [(e.created_at - e.workflow.submission.received_at).total_seconds() for e in events]


def wait_until_drafted(emails: list[str], deadline: float) -> int:
    from workflows.models import Status, Workflow

    done = 0
    while time.monotonic() < deadline:
        done = Workflow.objects.filter(
            submission__email__in=emails, status__in=[Status.AWAITING_APPROVAL, Status.FAILED]
        ).count()
        if done >= len(emails):
            break
        time.sleep(0.2)
    return done


def wait_until_attached(emails: list[str], deadline: float) -> int:
    """New contacts whose HubSpot contact was attached after their draft (issue #16)."""
    from workflows.models import Workflow

    done = 0
    while time.monotonic() < deadline:
        done = Workflow.objects.filter(submission__email__in=emails).exclude(contact_id="").count()
        if done >= len(emails):
            break
        time.sleep(0.2)
    return done


def start_worker(env: dict[str, str], pool: str, concurrency: int, log: Path):
    """A Celery worker and, beside it, the outbox relay that publishes what ``ingest`` stores
    (the webhook publishes nothing since issue #16): speed to lead includes the relay's lag.
    Stop both with ``stop_worker``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out = log.open("wb")
    proc = subprocess.Popen(
        [PY, "-m", "celery", "-A", "config", "worker", "--pool", pool,
         "--concurrency", str(concurrency), "--without-gossip", "--without-mingle",
         "--without-heartbeat", "--loglevel", "WARNING", "-Q", "celery",
         "--hostname", f"bench-{pool}-{concurrency}@%h"],
        cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    proc.relay = subprocess.Popen(
        [PY, "manage.py", "outbox_relay"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
    )
    return proc


def stop_worker(proc) -> None:
    for each in (proc, proc.relay):
        each.terminate()
    for each in (proc, proc.relay):
        try:
            each.wait(timeout=20)
        except subprocess.TimeoutExpired:
            each.kill()


def run_config(args, pool: str, concurrency: int) -> dict:
    import redis
    from django.db import connection

    from workflows.hubspot.sandbox import SandboxServer

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
        log = REPO / "var" / "bench" / f"worker-{run}.log"
        bursts = 1 if (pool, concurrency) in NOT_DEPLOYED else args.bursts
        batches = [
            [f"lead{n}-{run}-b{b}@bench.example.com" for n in range(args.count)]
            for b in range(bursts)
        ]
        for email in (e for batch in batches for e in batch):
            sandbox.seed_contact(email=email, firstname="Bench", company="Bench Co")
        worker = start_worker(env, pool, concurrency, log)
        try:
            time.sleep(6)  # let the worker connect before the burst
            if worker.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:])
            results = [run_burst(emails, worker, sandbox, args) for emails in batches]
            memory = rss_mb(worker.pid)
            # The median burst is the one judged and reported. Steady arrivals at half its
            # rate: speed to lead without a queue, known and new contacts interleaved.
            middle = sorted(results, key=lambda r: r["rate"])[len(results) // 2]
            paced_rate = max(0.5, middle["done"] / middle["elapsed"] / 2)
            paced = [f"paced{n}-{run}@bench.example.com" for n in range(args.paced_count)]
            known, new = paced[0::2], paced[1::2]
            for email in known:
                sandbox.seed_contact(email=email, firstname="Bench", company="Bench Co")
            ingest(paced, pause=1 / paced_rate)
            wait_until_drafted(paced, time.monotonic() + args.timeout)
            attached = wait_until_attached(new, time.monotonic() + 30)
        finally:
            stop_worker(worker)
    known_lags, new_lags = speed_to_lead(known), speed_to_lead(new)
    connection.close()
    redis.Redis.from_url(BROKER).flushdb()
    per_workflow_calls = middle["calls"] / max(1, args.count)
    bound = concurrency / (per_workflow_calls * args.latency_ms / 1000)
    return {
        "config": f"{pool} {concurrency}"
        + (" (not deployed)" if (pool, concurrency) in NOT_DEPLOYED else ""),
        "deployed": (pool, concurrency) not in NOT_DEPLOYED,
        "done": min(r["done"] for r in results),
        "awaiting": min(r["awaiting"] for r in results),
        "bursts": len(results),
        "rate": middle["rate"],
        "rates": [r["rate"] for r in results],
        "calls_per_workflow": per_workflow_calls,
        "bound": bound,
        "s2l_p50": middle["s2l_p50"],
        "s2l_p99": middle["s2l_p99"],
        "paced_rate": paced_rate,
        "known_drafted": len(known_lags),
        "known_p50": percentile(known_lags, 50),
        "known_p99": percentile(known_lags, 99),
        "new_drafted": len(new_lags),
        "new_p50": percentile(new_lags, 50),
        "new_p99": percentile(new_lags, 99),
        "new_attached": attached,
        "new_count": len(new),
        "known_count": len(known),
        "cpu_ms": middle["cpu_ms"],
        "machine_cpu_ms": middle["machine_cpu_ms"],
        "machine_busy": middle["machine_busy"],
        "rss": memory,
    }


def run_burst(emails: list[str], worker, sandbox, args) -> dict:
    """``emails`` ingested at once; measured until every workflow awaits approval."""
    from workflows.models import AuditEvent, Status, Workflow

    calls_before = len(sandbox.requests())
    cpu_before = cpu_seconds(worker.pid)
    busy_before, total_before = machine_jiffies()
    started = time.monotonic()
    ingest(emails)
    done = wait_until_drafted(emails, started + args.timeout)
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(worker.pid) - cpu_before
    busy_after, total_after = machine_jiffies()
    calls = len(sandbox.requests()) - calls_before
    awaiting = Workflow.objects.filter(
        status=Status.AWAITING_APPROVAL, submission__email__in=emails
    ).count()
    lags = speed_to_lead(emails)
    first = (
        Workflow.objects.filter(submission__email__in=emails)
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    last = AuditEvent.objects.filter(
        to_status=Status.AWAITING_APPROVAL, workflow__submission__email__in=emails
    ).order_by("-created_at")
    last_at = last.values_list("created_at", flat=True).first()
    busy = (last_at - first).total_seconds() if first and last_at else elapsed
    return {
        "done": done,
        "awaiting": awaiting,
        "elapsed": elapsed,
        "rate": awaiting / busy if busy else 0,
        "calls": calls,
        "s2l_p50": percentile(lags, 50),
        "s2l_p99": percentile(lags, 99),
        "cpu_ms": cpu / max(1, done) * 1000,
        # Every process's CPU during the burst, per workflow, and how busy the CPUs were.
        "machine_cpu_ms": (busy_after - busy_before) / TICKS / max(1, done) * 1000,
        "machine_busy": (busy_after - busy_before) / max(1, total_after - total_before),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--paced-count", type=int, default=100)
    parser.add_argument(
        "--bursts", type=int, default=3, help="bursts per deployed pool; the median is judged"
    )
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
         f"{r['rate']:.1f} ({min(r['rates']):.1f} to {max(r['rates']):.1f})",
         f"{r['bound']:.1f}", f"{r['rate'] / r['bound']:.0%}",
         verdict(r["rate"] >= 0.8 * r["bound"]), f"{r['cpu_ms']:.0f}",
         f"{r['machine_cpu_ms']:.0f}", f"{r['machine_busy']:.0%}",
         f"{r['s2l_p50']:.2f}", f"{r['s2l_p99']:.2f}",
         " + ".join(f"{m:.0f}" for m in r["rss"])]
        for r in results
    ]  # fmt: skip
    print()
    print_table(
        ["worker", "awaiting", "calls/wf", "workflows/s: median (min to max)",
         "bound C÷(callsxlatency)",
         "of bound", "≥ 0.8x bound", "worker CPU ms/wf", "machine CPU ms/wf", "CPUs busy",
         "burst speed-to-lead p50 s", "p99 s",
         "RSS MB (main + children)"],
        rows,
    )  # fmt: skip
    paced_rows = [
        [r["config"], kind, f"{r['paced_rate']:.1f}",
         f"{r[kind + '_drafted']}/{r[kind + '_count']}",
         f"{r[kind + '_p50']:.2f}", f"{r[kind + '_p99']:.2f}",
         verdict(r[kind + "_p50"] <= 1 and r[kind + "_p99"] <= 3),
         f"{r['new_attached']}/{r['new_count']}" if kind == "new" else "-"]
        for r in results for kind in ("known", "new")
    ]  # fmt: skip
    print(
        f"\nSteady arrivals ({args.paced_count} leads at half each burst's rate, known and new "
        "contacts interleaved):"
    )
    print_table(
        ["worker", "contact", "leads/s", "drafted", "speed-to-lead p50 s", "p99 s",
         "p50 ≤ 1 s, p99 ≤ 3 s", "contact attached"],
        paced_rows,
    )  # fmt: skip
    deployed = [r for r in results if r["deployed"]]
    # The thread pool runs ~1 workflow/s on Redis (NOT_DEPLOYED): it may not finish a burst
    # within --timeout, which is that known limit again, not a lost workflow.
    ok_all = all(
        r["awaiting"] == args.count
        and r["known_drafted"] == r["known_count"]
        and r["new_drafted"] == r["new_count"]
        for r in deployed
    )
    ok_bound = all(r["rate"] >= 0.8 * r["bound"] for r in deployed)
    ok_speed = all(
        r[kind + "_p50"] <= 1 and r[kind + "_p99"] <= 3
        for r in deployed
        for kind in ("known", "new")
    )
    ok_attached = all(r["new_attached"] == r["new_count"] for r in deployed)
    ok_mem = all(max(r["rss"] or [0]) <= 200 for r in results)
    print(f"\n{verdict(ok_all)}  every workflow reached awaiting_approval, every deployed pool")
    print(f"{verdict(ok_bound)}  workflows/s ≥ 0.8x the concurrency bound, every deployed pool")
    print(
        f"{verdict(ok_speed)}  steady speed to lead p50 ≤ 1 s, p99 ≤ 3 s, known and new, "
        "every deployed pool"
    )
    print(f"{verdict(ok_attached)}  every new contact attached afterwards, every deployed pool")
    print(f"{verdict(ok_mem)}  worker RSS ≤ 200 MB per process, every pool")
    if len(deployed) < len(results):
        print("(not deployed): shown, not judged; see NOT_DEPLOYED in bench/pipeline.py")
    print(
        f"burst speed-to-lead: {args.count} submissions at once, so it is mostly queueing "
        "(count ÷ workflows/s); the steady table is the lead's own wait"
    )
    return 0 if all((ok_all, ok_bound, ok_speed, ok_attached, ok_mem)) else 1


if __name__ == "__main__":
    sys.exit(main())
