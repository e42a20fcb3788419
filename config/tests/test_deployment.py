"""The deployment artefacts stay honest: compose services, migrations, the two commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from django.db import connection

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_has_every_service_with_its_command():
    services = compose()["services"]
    assert set(services) >= {"postgres", "redis", "migrate", "web", "worker", "beat"}
    assert services["migrate"]["command"][-3:] == ["manage.py", "migrate", "--no-input"]
    assert services["web"]["command"][:2] == ["gunicorn", "config.wsgi"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "config", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]


def test_compose_services_have_healthchecks_and_wait_for_them():
    services = compose()["services"]
    for name in ("postgres", "redis", "web", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
        assert services[name]["env_file"] == ".env"
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://")
        assert services[name]["environment"]["CELERY_BROKER_URL"].startswith("redis://")


def test_every_app_volume_is_a_directory_the_image_gives_to_its_user():
    # The app runs as `leadline`, not root. A bind mount (./logs) is created root-owned, and
    # a named volume at a path the image lacks is root's too: the app could then not write
    # its logs or metrics and every service failed at import (stop 23's walkthrough).
    dockerfile = (REPO / "Dockerfile").read_text()
    made = {d for line in re.findall(r"mkdir -p ([^&\n]+)", dockerfile) for d in line.split()}
    assert dockerfile.index("mkdir -p") < dockerfile.index("chown -R leadline /app")
    for name in ("migrate", "web", "worker", "beat", "relay"):
        for volume in compose()["services"][name]["volumes"]:
            source, target = volume.split(":")[:2]
            assert not source.startswith((".", "/")), f"{name}: bind mount {volume}"
            assert target.removeprefix("/app/") in made, f"{name}: {target} not in the image"


def test_compose_logs_go_to_stdout_and_docker_rotates_them():
    # A LOG_FILE inside the container grew with nothing to rotate it (stop 23's review).
    for name in ("migrate", "web", "worker", "beat", "relay"):
        service = compose()["services"][name]
        assert "LOG_FILE" not in service.get("environment", {}), name
        assert service["logging"]["options"]["max-size"], name


@pytest.mark.django_db
def test_the_web_health_check_passes_with_allowed_hosts_set(client, settings):
    # The health check probes by IP; ALLOWED_HOSTS (required in production) never names it.
    test = compose()["services"]["web"]["healthcheck"]["test"]
    url = re.search(r"http://[^'\"]+", " ".join(test)).group(0)
    settings.ALLOWED_HOSTS = ["leads.example.com"]
    host, path = url.removeprefix("http://").split("/", 1)
    response = client.get(f"/{path}", HTTP_HOST=host)
    assert response.status_code != 400, response.content


def test_env_example_documents_every_setting_of_the_design():
    documented = {
        line.split("=", 1)[0]
        for line in (REPO / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    required = {
        "API_ENV",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "HUBSPOT_CLIENT_SECRET",
        "HUBSPOT_ACCESS_TOKEN",
        "HUBSPOT_API_BASE_URL",
        "PUBLIC_BASE_URL",
        "MODE_DRAFT_ONLY",
        "ALLOW_AUTO_SEND",
        "SEND_EMAIL_ALLOWLIST",
        "WEBHOOK_MAX_AGE_SECONDS",
        "SECRET_KEY",
        "DEBUG",
        "ALLOWED_HOSTS",
        "EMAIL_URL",
        "PORT",
    }
    assert required <= documented


def test_env_example_documents_every_variable_the_settings_read():
    read = set(
        re.findall(
            r'(?:env_bool|env_int|env_float|env_json_list|env_choice|env_http_url|env_domain_list|env\.str|env\.list)\(\s*"([A-Z_]+)"',
            # settings.py, and config/env.py's var_dir() (LEADLINE_VAR_DIR)
            "".join((REPO / "config" / name).read_text() for name in ("settings.py", "env.py")),
        )
    )
    documented = set(
        re.findall(r"^#? ?([A-Z][A-Z0-9_]+)[=:]", (REPO / ".env.example").read_text(), re.M)
    )
    assert read and read - documented == set()


def test_env_example_copied_to_dotenv_boots():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value
    env["DATABASE_URL"] = os.environ.get("DATABASE_URL", "")
    out = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


def test_readme_opens_with_the_two_commands():
    head = (REPO / "README.md").read_text()[:1500]
    assert "make run" in head and "make test" in head


def test_ci_runs_make_test_and_nothing_else():
    script = (REPO / ".ci" / "run").read_text()
    commands = [ln for ln in script.splitlines() if ln.strip() and not ln.startswith("#")]
    assert commands[-1].strip() == "make test"


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="checks PostgreSQL migrations")
def test_each_app_migrates_to_zero_and_back_on_an_empty_postgresql_database():
    name = f"leadline_migrate_{uuid.uuid4().hex[:8]}"
    settings_dict = connection.settings_dict
    with connection._nodb_cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        host = settings_dict["HOST"] or "127.0.0.1"
        port = settings_dict["PORT"] or 5432
        url = f"postgres://{settings_dict['USER']}@{host}:{port}/{name}"
        env = {**os.environ, "DATABASE_URL": url}

        def manage(*args: str) -> str:
            out = subprocess.run(
                [sys.executable, "manage.py", *args],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert out.returncode == 0, out.stderr
            return out.stdout

        manage("migrate", "--no-input", "-v0")
        tables = manage(
            "dbshell",
            "--",
            "-At",
            "-c",
            "select tablename from pg_tables where schemaname='public'",
        ).split()
        assert {
            "form_submissions",
            "workflows",
            "workflow_errors",
            "email_drafts",
            "audit_events",
        } <= set(tables)
        for app in ("dashboard", "outreach", "workflows", "intake"):
            manage("migrate", app, "zero", "--no-input", "-v0")
        manage("migrate", "--no-input", "-v0")
    finally:
        connection.close()
        with connection._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- issue #16: the outbox relay and the scale-out override -----------------------------------


def test_the_relay_runs_everywhere_the_stack_runs():
    services = compose()["services"]
    assert services["relay"]["command"] == ["python", "manage.py", "outbox_relay"]
    assert services["relay"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert "/app/var/prometheus/relay" in services["web"]["environment"]["METRICS_EXTRA_DIRS"]
    procfile = dict(
        line.split(": ", 1) for line in (REPO / "Procfile").read_text().splitlines() if line
    )
    assert "manage.py outbox_relay" in procfile["relay"]
    run_sh = (REPO / "scripts" / "run.sh").read_text()
    assert 'procs="$procs relay"' in run_sh


def test_the_scale_override_pools_every_app_process_and_scales_workers_and_relays():
    base = compose()["services"]
    scale = yaml.safe_load((REPO / "docker-compose.scale.yml").read_text())["services"]
    assert set(scale) - set(base) == {"pgbouncer"}
    assert scale["pgbouncer"]["environment"]["POOL_MODE"] == "transaction"
    for name in ("web", "worker", "beat", "relay"):
        env = scale[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://leadline:leadline@pgbouncer:6432/"), name
        assert env["DATABASE_POOLER"] == "pgbouncer", name
        assert scale[name]["depends_on"]["pgbouncer"]["condition"] == "service_started"
    assert scale["relay"]["environment"]["DATABASE_DIRECT_URL"].startswith(
        "postgres://leadline:leadline@postgres:5432/"
    )
    assert "deploy" not in scale["beat"]  # exactly one beat
    assert scale["worker"]["deploy"]["replicas"] == "${WORKERS:-3}"
    assert scale["relay"]["deploy"]["replicas"] == 2
    worker = scale["worker"]["command"][-1]
    assert "celery -A config worker" in worker and " -B" not in worker and "--beat" not in worker
    assert "worker-$$HOSTNAME" in worker  # one metrics directory per replica
    # every environment value the override sets is a setting .env.example documents
    documented = {
        line.split("=", 1)[0]
        for line in (REPO / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    for name in ("web", "worker", "beat", "relay"):
        assert set(scale[name]["environment"]) - {"METRICS_EXTRA_DIRS"} <= documented
