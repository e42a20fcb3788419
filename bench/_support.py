"""Shared plumbing for the benches: a throwaway database, gunicorn, wrk, Redis db 8."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import requests

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
PG = "postgres://postgres@127.0.0.1:5432"
BROKER = "redis://127.0.0.1:6379/8"
SECRET = "bench-client-secret"  # noqa: S105 - a bench-only webhook secret


def recreate_database(name: str) -> str:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG}/{name}"


def bench_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": BROKER,
        "HUBSPOT_CLIENT_SECRET": SECRET,
        "API_ENV": "development",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "warning",
        "LOG_FILE": "",
        "EMAIL_URL": "memorymail://",
        **extra,
    }


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True
    )


def flush_broker() -> None:
    import redis

    redis.Redis.from_url(BROKER).flushdb()


class Gunicorn:
    def __init__(self, env: dict[str, str], port: int, workers: int, threads: int) -> None:
        self.env, self.port, self.workers, self.threads = env, port, workers, threads
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        self.proc = subprocess.Popen(
            [PY, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(self.workers), "--threads", str(self.threads),
             "--timeout", "30", "--backlog", "2048"],
            cwd=REPO, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); port taken?")
            try:
                if requests.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("gunicorn did not become healthy")

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def machine() -> str:
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return (
        f"{os.cpu_count()} CPUs, {mem_kb // 1024} MiB RAM, Linux {platform.release()}, "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}"
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    cells = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def dump(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))


# A realistic status mix for seeded workflows: (status, share in percent).
STATUS_MIX = [
    ("completed", 40),
    ("sent", 10),
    ("awaiting_approval", 20),
    ("rejected", 8),
    ("failed", 12),
    ("pending", 3),
    ("running", 3),
    ("approved", 2),
    ("sending", 1),
    ("send_unknown", 1),
]


def _status_case() -> str:
    cases, edge = [], 0
    for status, share in STATUS_MIX:
        edge += share
        cases.append(f"WHEN mod(g, 100) < {edge} THEN '{status}'")
    return "CASE " + " ".join(cases) + " END"


def seed_workflows(conn: psycopg.Connection, count: int, *, status: str | None = None) -> None:
    """INSERT … SELECT generate_series: ``count`` submissions, one workflow each, created over
    the last 90 days; ``status`` fixes every workflow's status, else STATUS_MIX applies."""
    conn.execute(
        """
        INSERT INTO form_submissions (dedupe_key, shape, signature_version, raw_payload, email,
            email_error, first_name, last_name, company, phone, message, form_id, page_uri,
            portal_id, object_id, event_type, submitted_at, received_at, workflow_at)
        SELECT 'seed:' || g, 'forms', 'v3', jsonb_build_object('n', g),
            'lead' || g || '@' || (ARRAY['acme.com', 'globex.com', 'initech.com',
                'umbrella.com', 'hooli.com', 'example.org'])[1 + mod(g, 6)],
            '', 'First' || (mod(g, 1000)), 'Last' || g, 'Company ' || (mod(g, 20000)), '',
            'Interested in pricing for ' || (mod(g, 9) + 1) || ' sites.',
            'form-' || (mod(g, 25)), 'https://www.example.com/pricing', 62515, '', '',
            now() - make_interval(secs => mod(g::bigint * 7919, 90 * 86400)),
            now() - make_interval(secs => mod(g::bigint * 7919, 90 * 86400)),
            -- as ingest stores it: its workflow's created_at (below: the received time)
            now() - make_interval(secs => mod(g::bigint * 7919, 90 * 86400))
        FROM generate_series(1, %s) AS g
        """,
        [count],
    )
    status_sql = "%s" if status else _status_case()
    params = [status] if status else []
    conn.execute(
        f"""
        INSERT INTO workflows (status, trigger, shadow, current_step, attempts, contact_id,
            owner_id, task_id, contact, step_log, last_error, created_at, updated_at,
            started_at, completed_at, submission_id, claimed_by)
        SELECT {status_sql}, 'webhook', false, 'hand_off', 1, (100000 + g)::text, '1001',
            '', '{{}}'::jsonb, '{{}}'::jsonb,
            CASE WHEN mod(g, 100) BETWEEN 78 AND 89 THEN 'create_crm_task failed: HubSpot 500'
                 ELSE '' END,
            s.received_at, s.received_at, s.received_at, s.received_at, s.id, ''
        FROM (SELECT id, received_at, row_number() OVER (ORDER BY id) AS g
              FROM form_submissions WHERE dedupe_key LIKE 'seed:%%') AS s
        """,  # noqa: S608 - status_sql is built from constants above
        params,
    )


#: Statuses whose workflows got as far as a draft held for approval, and those a human approved.
_DRAFTED = ("awaiting_approval", "approved", "sending", "send_unknown", "sent", "completed",
            "rejected")  # fmt: skip
_APPROVED = ("approved", "sending", "send_unknown", "sent")


def seed_history(conn: psycopg.Connection) -> None:
    """What the pipeline leaves beside each seeded workflow, so the pages join and aggregate
    over realistic tables: an email draft for every workflow that reached a draft, and the
    audit trail (pending → running, running → awaiting_approval 20 to 140 s later, and
    awaiting_approval → approved 5 to 67 min after that for the approved ones)."""
    drafted = "ARRAY[" + ", ".join(f"'{s}'" for s in _DRAFTED) + "]"
    approved = "ARRAY[" + ", ".join(f"'{s}'" for s in _APPROVED) + "]"
    conn.execute(
        f"""
        INSERT INTO email_drafts (workflow_id, recipient, subject, body, body_html, template,
            drafter, original_subject, original_body, decision, decision_reason, decided_at,
            gate_action, gate_reason, idempotency_key, send_attempts, send_failures,
            provider_message_id, last_send_error, created_at, updated_at,
            language, ai_model, ai_prompt_file, ai_guards, ai_outcome, ai_detail)
        SELECT w.id, 'lead' || w.id || '@example.com', 'Following up on your request',
            repeat('Thanks for reaching out about pricing. ', 12), '', 'outreach/follow_up',
            'template', 'Following up on your request',
            repeat('Thanks for reaching out about pricing. ', 12),
            CASE WHEN w.status = ANY({approved}) THEN 'approved'
                 WHEN w.status = 'rejected' THEN 'rejected' ELSE 'pending' END,
            '', NULL, 'hold', '', 'seed:' || w.id, 0, 0, '', '', w.created_at, w.created_at,
            -- a template draft: no model was asked (issue #17's columns, empty)
            '', '', '', '[]'::jsonb, '', ''
        FROM workflows w WHERE w.status = ANY({drafted})
        """  # noqa: S608 - built from constants above
    )
    conn.execute(
        f"""
        INSERT INTO audit_events (actor, action, object_type, object_id, workflow_id,
            from_status, to_status, reason, details, created_at)
        SELECT 'system', 'workflow.transition', 'workflow', w.id::text, w.id, t.from_status,
            t.to_status, '', '{{}}'::jsonb, w.created_at + t.after
        FROM workflows w
        CROSS JOIN LATERAL (VALUES
            ('pending', 'running', interval '1 second', true),
            ('running', 'awaiting_approval',
             make_interval(secs => 20 + mod(w.id, 120)), w.status = ANY({drafted})),
            ('awaiting_approval', 'approved',
             make_interval(secs => 140 + 300 + mod(w.id * 7, 3600)), w.status = ANY({approved}))
        ) AS t(from_status, to_status, after, happened)
        WHERE t.happened
        """  # noqa: S608 - built from constants above
    )
