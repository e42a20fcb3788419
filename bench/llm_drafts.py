"""Speed to lead with AI drafts: the template drafter vs the llm drafter at 1 s model latency,
and a hung model (the floor), through a real Celery worker.

    .venv/bin/python bench/llm_drafts.py [--count 40] [--paced-count 20] [--model-latency-ms 1000]

For each scenario: a fresh database ``leadline_bench_llm``, a prefork worker (concurrency 4)
on CELERY_BROKER_URL (default redis db 8, as the other benches), the HubSpot sandbox at 50 ms a
call and the model sandbox (outreach.llm.sandbox) in this process. ``count`` submissions arrive
at once (a burst: mostly queueing), then ``paced-count`` one by one at 1 lead/s (the lead's own
wait). Figures: speed to lead (receipt → awaiting_approval) p50/p99, the draft step's duration
p50, and how many drafts are AI text.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import (
    REPO,
    bench_env,
    machine,
    migrate,
    percentile,
    print_table,
    recreate_database,
    verdict,
)
from bench.pipeline import ingest, speed_to_lead, start_worker, stop_worker, wait_until_drafted

DB = "leadline_bench_llm"
BROKER = os.environ.get("CELERY_BROKER_URL", "") or "redis://127.0.0.1:6379/8"
SCENARIOS = [
    ("template", {}, {}),
    ("llm, model 1 s", {"OUTREACH_DRAFTER": "llm"}, {}),
    ("llm, model hangs (timeout 2 s)", {"OUTREACH_DRAFTER": "llm", "LLM_TIMEOUT_SECONDS": "2"},
     {"fault": "timeout"}),
]  # fmt: skip


def run(args, name: str, extra_env: dict[str, str], model_config: dict) -> dict:
    import redis
    from django.db import connection

    from outreach.llm.sandbox import LlmSandboxServer
    from outreach.models import EmailDraft
    from workflows.hubspot.sandbox import SandboxServer
    from workflows.models import Workflow

    url = recreate_database(DB)
    env = bench_env(
        url,
        CELERY_BROKER_URL=BROKER,
        HUBSPOT_RATE_LIMIT_PER_10S="1000000",
        HUBSPOT_SEARCH_RATE_PER_S="100000",
        LOG_LEVEL="warning",
        LLM_API_KEY="bench",
        LLM_MODEL="bench-model",
        LLM_DAILY_TOKEN_BUDGET="100000000",  # noqa: S106 - a number, not a secret
        **extra_env,
    )
    migrate(env)
    connection.close()
    redis.Redis.from_url(BROKER).flushdb()
    with (
        SandboxServer(token="bench-token", latency_ms=50, rate_limit=1_000_000) as crm,  # noqa: S106
        LlmSandboxServer(latency_ms=args.model_latency_ms, **model_config) as model,
    ):
        env.update(
            HUBSPOT_ACCESS_TOKEN=crm.token,
            HUBSPOT_API_BASE_URL=crm.url,
            LLM_BASE_URL=model.base_url,
        )
        tag = name.split(",")[0].replace(" ", "")
        emails = [f"lead{n}-{tag}{len(extra_env)}@bench.example.com" for n in range(args.count)]
        paced = [
            f"paced{n}-{tag}{len(extra_env)}@bench.example.com" for n in range(args.paced_count)
        ]
        for email in emails + paced:
            crm.seed_contact(email=email, firstname="Bench", company="Bench Co")
        log = REPO / "var" / "bench" / "worker-llm.log"
        worker = start_worker(env, "prefork", 4, log)
        try:
            time.sleep(6)
            if worker.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:])
            started = time.monotonic()
            ingest(emails)
            done = wait_until_drafted(emails, started + args.timeout)
            ingest(paced, pause=1.0)
            wait_until_drafted(paced, time.monotonic() + args.timeout)
        finally:
            stop_worker(worker)
    burst, steady = speed_to_lead(emails), speed_to_lead(paced)
    steps = [
        w.step_log.get("draft_email", {}).get("duration_ms", 0) / 1000
        for w in Workflow.objects.filter(submission__email__in=emails + paced)
    ]
    ai = EmailDraft.objects.filter(drafter="llm").count()
    connection.close()
    redis.Redis.from_url(BROKER).flushdb()
    return {
        "name": name,
        "done": done + len(steady),
        "ai": ai,
        "draft_p50": percentile(steps, 50),
        "draft_max": max(steps or [0]),
        "burst_p50": percentile(burst, 50),
        "burst_p99": percentile(burst, 99),
        "steady_p50": percentile(steady, 50),
        "steady_p99": percentile(steady, 99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--paced-count", type=int, default=20)
    parser.add_argument("--model-latency-ms", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    os.environ.update(bench_env(f"postgres://postgres@127.0.0.1:5432/{DB}"))
    os.environ["CELERY_BROKER_URL"] = BROKER  # this process publishes where the worker reads
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    recreate_database(DB)
    import django

    django.setup()
    results = [run(args, name, env, model) for name, env, model in SCENARIOS]
    total = args.count + args.paced_count
    print()
    print_table(
        ["drafter", "awaiting", "AI drafts", "draft step p50 s", "max s",
         f"burst ({args.count}) p50 s", "p99 s", "steady (1/s) p50 s", "p99 s"],
        [[r["name"], f"{r['done']}/{total}", str(r["ai"]), f"{r['draft_p50']:.2f}",
          f"{r['draft_max']:.2f}", f"{r['burst_p50']:.2f}", f"{r['burst_p99']:.2f}",
          f"{r['steady_p50']:.2f}", f"{r['steady_p99']:.2f}"] for r in results],
    )  # fmt: skip
    template, llm, hung = results
    added = llm["steady_p50"] - template["steady_p50"]
    ok_all = all(r["done"] == total for r in results)
    ok_added = added <= args.model_latency_ms / 1000 + 0.5
    ok_floor = hung["draft_max"] <= 2 + 0.5 and hung["ai"] == 0
    print(f"\n{verdict(ok_all)}  every workflow reached awaiting_approval")
    print(f"{verdict(ok_added)}  the llm drafter adds {added:.2f} s to steady speed to lead "
          f"(≤ model latency + 0.5 s)")  # fmt: skip
    print(f"{verdict(ok_floor)}  a hung model costs at most LLM_TIMEOUT_SECONDS (+0.5 s), "
          "then the template")  # fmt: skip
    return 0 if ok_all and ok_added and ok_floor else 1


if __name__ == "__main__":
    sys.exit(main())
