"""Issue #14: DEBUG only when asked, error output without credentials, plain 400 for a bad Host,
`check --deploy` clean with .env.example's production values, headers and the login limit."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.test import Client

from config.security import client_address, mask_url, mask_urls_in, parse_cidrs
from tests.harness import GunicornServer

REPO = Path(__file__).resolve().parents[2]
# What the settings read: settings.py, and config/env.py's var_dir() (LEADLINE_VAR_DIR).
SETTINGS = "".join((REPO / "config" / name).read_text() for name in ("settings.py", "env.py"))


def boot(code: str = "print('booted')", **env: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter, as the web/worker processes would."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MODE_", "ALLOW_", "API_"))}
    for name in ("DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", "SEND_EMAIL_ALLOWLIST"):
        base.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}"],
        cwd=REPO,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "error", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- 1. DEBUG ------------------------------------------------------------------------------


def test_debug_is_off_unless_asked_for_in_development():
    code = "from django.conf import settings; print(settings.DEBUG)"
    assert boot(code, API_ENV="development").stdout.strip() == "False"
    assert boot(code, API_ENV="development", DEBUG="true").stdout.strip() == "True"
    assert boot(code, API_ENV="staging", DEBUG="false").stdout.strip() == "False"


@pytest.mark.parametrize("api_env", ["staging", "production"])
def test_debug_outside_development_refuses_to_start_naming_the_variables(api_env):
    env = {"API_ENV": api_env, "DEBUG": "true", "SECRET_KEY": "s" * 50}
    env |= {"ALLOWED_HOSTS": "leadline.example.com"}
    result = boot(**env)
    assert result.returncode != 0
    assert f"DEBUG=true is only allowed with API_ENV=development (API_ENV={api_env})" in (
        result.stderr
    )


# --- 1. Error reports mask every URL-shaped setting -----------------------------------------

#: Settings read with env.str / env.list that cannot take a URL, and why. Every other one the
#: settings read as text is given a URL carrying a password, a token-like path and a token
#: query value below (typed readers: env_bool, env_int, … cannot hold a URL at all).
NOT_URL_SHAPED = {
    "LOG_FILE": "a path the process creates at boot",
    "PROMETHEUS_MULTIPROC_DIR": "a directory the process creates at boot",
    "LEADLINE_VAR_DIR": "a directory the process creates at boot",
    "METRICS_EXTRA_DIRS": "directories",
    "METRICS_ALLOWED_CIDRS": "must parse as CIDRs or the process refuses to start",
    "TRUSTED_PROXY_CIDRS": "must parse as CIDRs or the process refuses to start",
    "LEAD_EVENT_TYPES": "must name contact events or the process refuses to start",
    "HUBSPOT_ACCOUNT_TIME_ZONE": "must name an IANA time zone or the process refuses to start",
}
SPECIFIC = {
    "DATABASE_URL": "postgres://postgres:PW-DB-s3cret@127.0.0.1:5432/leadline?sslmode=disable",
    "CELERY_BROKER_URL": "redis://:PW-BROKER-s3cret@127.0.0.1:6390/13",
    "EMAIL_URL": "smtp+tls://mailer:PW-MAIL-s3cret@smtp.example.com:587",
    "API_ENV": "staging",
}


def text_settings_read() -> set[str]:
    return set(re.findall(r'(?:env\.str|env\.list)\(\s*"([A-Z_]+)"', SETTINGS))


def credential_url(name: str) -> str:
    return (
        f"https://{name.lower()}:PW-{name}-s3cret@{name.lower()}.example.com"
        f"/hooks/T0{name}9x8y7z/XyZ{name}WebhookPath?token=Q{name}7q8r9s&region=eu"
    )


def test_every_text_setting_is_either_masked_or_explained():
    assert set(NOT_URL_SHAPED) <= text_settings_read()
    assert {"DATABASE_URL", "CELERY_BROKER_URL", "ALERT_WEBHOOK_URL", "EMAIL_URL"} <= (
        text_settings_read()
    )


def test_error_reports_mask_the_credentials_of_every_setting_the_project_reads():
    env = {
        name: credential_url(name)
        for name in text_settings_read()
        if name not in NOT_URL_SHAPED and name not in SPECIFIC
    }
    env |= SPECIFIC
    code = (
        "import sys\n"
        "from django.conf import settings\n"
        "from django.test import RequestFactory\n"
        "from django.views.debug import get_default_exception_reporter_filter\n"
        "from django.views.debug import get_exception_reporter_class\n"
        "request = RequestFactory().get('/x', HTTP_REFERER=settings.ALERT_WEBHOOK_URL)\n"
        "try:\n"
        "    database_url = settings.DATABASE_URL\n"
        "    raise RuntimeError('cannot reach ' + database_url + ' ' + settings.EMAIL_HOST)\n"
        "except RuntimeError:\n"
        "    reporter = get_exception_reporter_class(request)(request, *sys.exc_info())\n"
        "print(get_default_exception_reporter_filter().get_safe_settings())\n"
        "print(reporter.get_traceback_text())\n"
        "print(reporter.get_traceback_html())\n"
    )
    result = boot(code, **env)
    assert result.returncode == 0, result.stderr
    output = result.stdout
    # it did render the settings, the frame and the request...
    assert "ALERT_WEBHOOK_URL" in output and "database_url" in output and "HTTP_REFERER" in output
    # ...with hosts kept and every credential masked
    assert "alert_webhook_url.example.com" in output and "127.0.0.1:5432" in output
    for secret_part in ("s3cret", "9x8y7z", "7q8r9s", "WebhookPath"):
        assert secret_part not in output, secret_part


def test_mask_url_keeps_what_says_where_and_drops_what_grants_access():
    assert mask_url("postgres://u:pw@db:5432/leadline") == "postgres://********@db:5432/leadline"
    assert (
        mask_url("https://hooks.slack.com/services/T0123ABCD/B0123ABCD/abcdefghijklmnopqrstuvwx")
        == "https://hooks.slack.com/services/********/********/********"
    )
    assert (
        mask_url("https://x.example/?token=abc&page=2")
        == "https://x.example/?token=********&page=2"
    )
    assert mask_urls_in("see redis://:pw@r:6379/0 now") == "see redis://********@r:6379/0 now"
    assert mask_url("filesystem://") == "filesystem://"


# --- 1. Bad requests with credentials configured ---------------------------------------------

PG_PASSWORD = "Pg-S3cret-pw-4471"
REDIS_PASSWORD = "Redis-S3cret-pw-8812"
HOOK_PATH = "/services/T0AAAAAAA/B0BBBBBBB/XyZsecretWebhookPath123"


@pytest.fixture
def credentials_env(django_db_setup) -> dict[str, str]:
    db = connection.settings_dict
    return {
        **{k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")},
        "DJANGO_SETTINGS_MODULE": "config.tests.error_settings",
        # local PostgreSQL trusts 127.0.0.1: the password is carried, not needed
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{PG_PASSWORD}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CELERY_BROKER_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:6390/13",
        "ALERT_WEBHOOK_URL": f"https://hooks.slack.com{HOOK_PATH}",
        "HUBSPOT_CLIENT_SECRET": "client-secret-0123456789",
        "LOG_FILE": "",
        "LOG_LEVEL": "error",
    }


def bad_requests(url: str) -> dict[str, requests.Response]:
    webhook = f"{url}/api/webhooks/hubspot/forms"
    return {
        "bad host": requests.post(
            webhook, data=b"{}", headers={"Host": "evil.example"}, timeout=10
        ),
        "404": requests.get(f"{url}/no/such/page", timeout=10),
        "405": requests.get(webhook, timeout=10),
        "400": requests.get(f"{url}/suspicious", timeout=10),
        "401": requests.post(webhook, json={}, timeout=10),
        "500": requests.get(f"{url}/boom", timeout=10),
    }


def assert_no_credentials(responses: dict[str, requests.Response]) -> None:
    for what, response in responses.items():
        text = response.text + "".join(f"{k}: {v}\n" for k, v in response.headers.items())
        for secret_part in (PG_PASSWORD, REDIS_PASSWORD, HOOK_PATH, "XyZsecretWebhookPath123"):
            assert secret_part not in text, (what, secret_part)


def test_staging_with_credentials_answers_bad_requests_without_them(credentials_env):
    with GunicornServer({**credentials_env, "API_ENV": "staging"}) as web:
        responses = bad_requests(web.url)
    assert {k: r.status_code for k, r in responses.items()} == {
        "bad host": 400,
        "404": 404,
        "405": 405,
        "400": 400,
        "401": 401,
        "500": 500,
    }
    assert responses["bad host"].text == "Bad Request (400)\n"
    assert responses["bad host"].headers["Content-Type"].startswith("text/plain")
    assert "Traceback" not in responses["500"].text and "settings" not in responses["500"].text
    assert_no_credentials(responses)


def test_development_debug_pages_mask_credentials_and_a_bad_host_is_still_plain(credentials_env):
    env = {**credentials_env, "API_ENV": "development", "DEBUG": "true"}
    with GunicornServer(env) as web:
        responses = bad_requests(web.url)
    assert responses["bad host"].status_code == 400
    assert responses["bad host"].text == "Bad Request (400)\n"
    # the debug page is there (development asked for it) and lists the settings, masked
    page = responses["500"].text
    assert responses["500"].status_code == 500 and "RuntimeError" in page
    assert "ALERT_WEBHOOK_URL" in page and "hooks.slack.com" in page
    assert_no_credentials(responses)


# --- 7. Client address: only X-Forwarded-For, only from a trusted proxy ----------------------


def test_client_address_reads_forwarded_for_only_from_trusted_proxies(rf):
    proxies = parse_cidrs("TRUSTED_PROXY_CIDRS", ["10.0.0.0/8"])
    direct = rf.get("/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert str(client_address(direct, proxies)) == "203.0.113.9"
    relayed = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 10.0.0.3")
    assert str(client_address(relayed, proxies)) == "1.2.3.4"
    silent = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_REAL_IP="127.0.0.1")
    assert client_address(silent, proxies) is None
    garbage = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-ip")
    assert client_address(garbage, proxies) is None


# --- 8. Headers, check --deploy, login rate limit --------------------------------------------


def env_example() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value
    return values


def test_check_deploy_with_the_production_settings_of_env_example_prints_no_warnings():
    database = os.environ.get("DATABASE_URL", "")
    if not database.startswith("postgres"):
        pytest.skip("production settings require a PostgreSQL DATABASE_URL")
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")},
        **env_example(),
        # what .env.example says production must set
        "API_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "leadline.example.com",
        "DATABASE_URL": database,
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", ""),
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "System check identified no issues (0 silenced)." in out.stdout
    assert "WARNING" not in out.stdout + out.stderr


def test_production_cookies_and_hsts():
    code = (
        "from django.conf import settings as s\n"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY,"
        " s.CSRF_COOKIE_HTTPONLY, s.SESSION_COOKIE_SAMESITE, s.SECURE_HSTS_SECONDS > 0,"
        " s.SECURE_CONTENT_TYPE_NOSNIFF, s.SECURE_REFERRER_POLICY, s.X_FRAME_OPTIONS)"
    )
    result = boot(
        code,
        API_ENV="production",
        SECRET_KEY="s" * 50,
        ALLOWED_HOSTS="leadline.example.com",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/leadline",
    )
    assert result.stdout.split() == [
        "True",
        "True",
        "True",
        "True",
        "Lax",
        "True",
        "True",
        "same-origin",
        "DENY",
    ], result.stderr


@pytest.mark.django_db
def test_responses_carry_the_csp_and_security_headers(client, operator):
    client.force_login(operator)
    response = client.get("/dashboard/")
    csp = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    html = response.content.decode()
    assert "<script>" not in html and "<style" not in html and " style=" not in html
    assert '"allowEval": false' in html and '"includeIndicatorStyles": false' in html


@pytest.mark.django_db
def test_the_login_locks_out_after_the_failure_limit(operator, settings, caplog):
    client = Client(REMOTE_ADDR="198.51.100.7")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/admin/login/", {"username": "olivia", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    with caplog.at_level("WARNING", logger="axes"):
        assert client.post(
            "/admin/login/", {"username": "olivia", "password": "wrong"}
        ).status_code == (429)
    # the lockout line names the address (for axes_reset_ip), never the username tried
    locked = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("axes"))
    assert "198.51.100.7" in locked and "olivia" not in locked, locked
    # locked out: even the right password is refused from that address...
    right = {"username": "olivia", "password": "pw-olivia-123"}
    refused = client.post("/admin/login/", right)
    assert refused.status_code == 429
    text = refused.content.decode()
    assert "Too many failed logins from this address" in text
    assert f"paused for {settings.AXES_COOLOFF_TIME.seconds // 60} minutes" in text
    # ...while another address logs in
    other = Client(REMOTE_ADDR="198.51.100.8")
    assert other.post("/admin/login/", right).status_code == 302


# --- 9. The threat model names real tests ------------------------------------------------------


def test_every_control_in_security_md_names_a_test_that_exists():
    doc = (REPO / "docs" / "security.md").read_text()
    threats = doc[doc.index("## Threats, controls and tests") : doc.index("## Login rate limit")]
    rows = [
        line
        for line in threats.splitlines()
        if line.startswith("| ") and not line.startswith(("| threat", "|---"))
    ]
    assert len(rows) >= 20
    for row in rows:
        assert "::test_" in row, row
    current, named = None, []
    for path, name in re.findall(r"`([\w/]+\.py)?::(test_\w+)`", threats):
        current = path or current
        named.append((current, name))
    for path, name in named:
        assert f"def {name}(" in (REPO / path).read_text(), (path, name)
    assert "## Reporting a vulnerability" in doc


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_the_probes_answer_whatever_the_host(client, settings, path):
    # docker-compose's health check and load balancers probe by IP, never in ALLOWED_HOSTS:
    # web stayed "unhealthy" forever once ALLOWED_HOSTS was set (stop 23's walkthrough).
    settings.ALLOWED_HOSTS = ["leads.example.com"]

    probe = client.get(path, HTTP_HOST="127.0.0.1:8000")
    other = client.get("/dashboard/", HTTP_HOST="127.0.0.1:8000")

    assert probe.status_code in (200, 503), probe.content  # 503: broker not reachable here
    assert probe.json()["status"] in ("ok", "unavailable")
    assert other.status_code == 400 and other.content == b"Bad Request (400)\n"
    assert client.post(path, HTTP_HOST="127.0.0.1:8000").status_code == 405


def test_no_template_or_admin_helper_has_an_inline_style_attribute():
    """The CSP (style-src 'self') blocks inline style attributes: a page that used one lost
    that styling silently (the admin's approval page cut every draft line at its edge)."""
    import re
    from pathlib import Path

    from django.conf import settings

    root = Path(settings.BASE_DIR)
    inline = re.compile(r"<[a-zA-Z][^>]*\sstyle\s*=", re.DOTALL)
    files = [*root.glob("templates/**/*.html"), *root.glob("*/templates/**/*.html")]
    apps = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    files += [p for app in apps for p in app.glob("**/*.py") if "tests" not in p.parts]
    assert len(files) > 20
    found = [str(p.relative_to(root)) for p in files if inline.search(p.read_text())]
    assert found == []
