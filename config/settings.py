"""Leadline settings: the environment is read here and only here.

Parsing is strict: a malformed value stops the process with a message naming the variable.
See .env.example for every variable, its default and its meaning.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import environ
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env,
    env_bool,
    env_choice,
    env_domain_list,
    env_float,
    env_http_url,
    env_int,
    env_json_list,
    var_dir,
)
from config.logging import LOG_LEVELS, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
# Runtime state (SQLite, the filesystem broker, `make run`'s var/run/<port>/): issue #15.
VAR_DIR = var_dir()
LOG_DIR = BASE_DIR / "logs"

TESTING = "pytest" in sys.modules or env_bool("LEADLINE_TESTING", False)

# --- Environment and send mode (see outreach/gate.py for what they allow) ---------------
API_ENV = env_choice("API_ENV", "development", ("development", "staging", "production"))
PRODUCTION = API_ENV == "production"
MODE_DRAFT_ONLY = env_bool("MODE_DRAFT_ONLY", True)
ALLOW_AUTO_SEND = env_bool("ALLOW_AUTO_SEND", False)
SEND_EMAIL_ALLOWLIST = env_json_list("SEND_EMAIL_ALLOWLIST")

# --- Core Django ---------------------------------------------------------------------------
# Debug pages only when asked for, and only in development (issue #14: see the block at the end).
DEBUG = env_bool("DEBUG", False)
if DEBUG and API_ENV != "development":
    raise ImproperlyConfigured(
        f"DEBUG=true is only allowed with API_ENV=development (API_ENV={API_ENV}): debug pages "
        "would show this deployment's internals. Unset DEBUG or set API_ENV=development."
    )
_DEV_SECRET = "dev-only-insecure-secret-key-change-me"  # noqa: S105 - development default
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = [h for h in env.list("ALLOWED_HOSTS", default=[]) if h]
if PRODUCTION:
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY is required when API_ENV=production.")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS is required when API_ENV=production.")
else:
    SECRET_KEY = SECRET_KEY or _DEV_SECRET
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_celery_results",
    "django_htmx",
    # API tokens: django-rest-knox (issue #14, see REST_KNOX). Before the project apps:
    # dashboard/admin.py replaces knox's token admin.
    "knox",
    "drf_spectacular_sidecar",
    "axes",
    "intake",
    "workflows",
    "workflows.hubspot",
    "outreach",
    "dashboard",
]

MIDDLEWARE = [
    # An unknown Host gets a plain 400 in every mode, before anything else runs (issue #14).
    "config.security.BadHostMiddleware",
    "config.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The operator's time zone, for the dashboard and the admin (issue #15, see below).
    "dashboard.timezones.OperatorTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # django-axes must be last: it turns a locked-out login into its 429 answer (issue #14).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
APPEND_SLASH = True

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "workflows.hubspot.context_processors.hubspot_status",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------------
# Default: SQLite under var/ so `make run` needs no server. WAL + busy timeout let the web,
# worker and beat processes write concurrently (`init_command` turns WAL on per connection).
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASE_URL = env.str("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'leadline.sqlite3'}"
DATABASES = {"default": environ.Env.db_url_config(DATABASE_URL)}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db.setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
elif _db["ENGINE"] in ("django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2"):
    _db["ENGINE"] = "django.db.backends.postgresql"
    _db.setdefault("CONN_MAX_AGE", env_int("DB_CONN_MAX_AGE", 60))
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    # JIT compiles a plan when its *estimated* cost is high, which for the dashboard's
    # aggregates cost 220 ms of compilation to save nothing (bench/dashboard.py, 1M rows).
    # OLTP queries here are short; the server default stays for anyone's ad-hoc psql.
    _db["OPTIONS"].setdefault("options", "-c jit=off")
    # Server-side prepared statements (psycopg prepares a query the Nth time a connection runs
    # it). Planning was half of the webhook's statement (issue #16, docs/performance.md); Django
    # turns them off for poolers' sake, and DATABASE_POOLER=pgbouncer below still does. 0: off.
    _prepare = env_int("DB_PREPARE_THRESHOLD", 5)
    _db["OPTIONS"].setdefault("prepare_threshold", _prepare or None)
if PRODUCTION and _db["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL when API_ENV=production.")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# The app's own login and logout (config/urls.py, templates/registration/); the admin uses them.
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- Security (production) -----------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", False)
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
CSRF_TRUSTED_ORIGINS = [o for o in env.list("CSRF_TRUSTED_ORIGINS", default=[]) if o]

# --- Email ---------------------------------------------------------------------------------
# django-environ email URL, e.g. smtp+tls://user:pass@smtp.example.com:587. Tests use locmem.
vars().update(environ.Env.email_url_config(env.str("EMAIL_URL", default="") or "consolemail://"))
if TESTING:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Leadline <leads@example.com>")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 15, minimum=1)

# --- HubSpot -------------------------------------------------------------------------------
HUBSPOT_CLIENT_SECRET = env.str("HUBSPOT_CLIENT_SECRET", default="")
HUBSPOT_ACCESS_TOKEN = env.str("HUBSPOT_ACCESS_TOKEN", default="")
HUBSPOT_API_BASE_URL = (
    env.str("HUBSPOT_API_BASE_URL", default="") or "https://api.hubapi.com"
).rstrip("/")
HUBSPOT_RATE_LIMIT_PER_10S = env_int("HUBSPOT_RATE_LIMIT_PER_10S", 100, minimum=1)
HUBSPOT_SEARCH_RATE_PER_S = env_int("HUBSPOT_SEARCH_RATE_PER_S", 4, minimum=1)
# Seconds to wait for HubSpot's answer; a timeout is retried as a transient error. Default 10.
HUBSPOT_TIMEOUT_SECONDS = env_float("HUBSPOT_TIMEOUT_SECONDS", 10.0, minimum=0.1)
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").rstrip("/")
PORT = env_int("PORT", 8000, minimum=1)
# Where links in CRM tasks and alerts point: the public URL, else the local `make run` address.
# (manage.py replay, typed in another shell, links to the running `make run` it finds, as
# send_test_webhook does: config.runstate.running_instance.)
DASHBOARD_BASE_URL = PUBLIC_BASE_URL or f"http://127.0.0.1:{PORT}"
WEBHOOK_MAX_AGE_SECONDS = env_int("WEBHOOK_MAX_AGE_SECONDS", 300, minimum=1)
# v1 and v2 signatures carry no timestamp, so a captured request can be replayed (dedupe keeps
# it from being stored twice). Raise to v3 when every sender signs v3 (workflow webhooks don't).
WEBHOOK_MIN_SIGNATURE_VERSION = env_choice(
    "WEBHOOK_MIN_SIGNATURE_VERSION", "v1", ("v1", "v2", "v3")
)
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
# A body over WEBHOOK_MAX_BODY_BYTES is answered 413 and not processed. Up to this size it is
# still read, and kept as a refused delivery for review when HubSpot signed it (a workflow
# never retries a 4xx, so it would be lost). Bodies larger than this are not read at all.
WEBHOOK_KEEP_OVERSIZE_BYTES = env_int("WEBHOOK_KEEP_OVERSIZE_BYTES", 8 * 1024 * 1024, minimum=0)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(WEBHOOK_MAX_BODY_BYTES, 2621440)

# --- Workflow behaviour ----------------------------------------------------------------------
WORKFLOW_MAX_ATTEMPTS = env_int("WORKFLOW_MAX_ATTEMPTS", 3, minimum=1)
WORKFLOW_RETRY_BASE_SECONDS = env_int("WORKFLOW_RETRY_BASE_SECONDS", 2, minimum=0)
WORKFLOW_RETRY_MAX_SECONDS = env_int("WORKFLOW_RETRY_MAX_SECONDS", 300, minimum=1)
WORKFLOW_LEASE_SECONDS = env_int("WORKFLOW_LEASE_SECONDS", 300, minimum=5)
SWEEPER_PENDING_AFTER_SECONDS = env_int("SWEEPER_PENDING_AFTER_SECONDS", 60, minimum=1)
SWEEPER_BATCH_SIZE = env_int("SWEEPER_BATCH_SIZE", 500, minimum=1)
CONTACT_SEARCH_LAG_RETRIES = env_int("CONTACT_SEARCH_LAG_RETRIES", 3)
CONTACT_SEARCH_LAG_BASE_SECONDS = env_float("CONTACT_SEARCH_LAG_BASE_SECONDS", 0.5)
FOLLOW_UP_TARGET_MINUTES = env_int("FOLLOW_UP_TARGET_MINUTES", 15, minimum=1)
SPEED_TO_LEAD_TARGET_MINUTES = env_int("SPEED_TO_LEAD_TARGET_MINUTES", 15, minimum=1)

# --- Celery (https://docs.celeryq.dev/en/stable/userguide/configuration.html) --------------
# Default: kombu's filesystem transport under var/, so `make run` needs no Redis. Its URL names
# a host: without one kombu warns "No hostname was supplied. Reverting to default 'localhost'"
# on every connection (and retry).
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
if CELERY_BROKER_URL.rstrip("/") in ("", "filesystem:"):
    CELERY_BROKER_URL = "filesystem://localhost/"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("in", "processed", "control"):
        (_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "in"),
        "data_folder_out": str(_BROKER_DIR / "in"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Must exceed the longest countdown/ETA we ever schedule, or Redis redelivers early.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 2 * 3600,
        # A broker that drops packets must not hang a webhook request: bounded socket waits.
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 180
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-workflows": {"task": "workflows.sweep_workflows", "schedule": 60.0},
    "send-alerts": {"task": "workflows.send_alerts", "schedule": 60.0},
    # Form and owner names shown for ids on the dashboard and admin (workflows/hubspot/names.py).
    "refresh-hubspot-names": {"task": "hubspot.refresh_names", "schedule": 24 * 3600.0},
    # The account's time zone: when HubSpot's daily limit resets (workflows/hubspot/account.py).
    "refresh-hubspot-account": {"task": "hubspot.refresh_account", "schedule": 24 * 3600.0},
}
# A broker that does not answer must not hold anything for long. The webhook's enqueue also
# connects once and publishes without retries (workflows.services.workflows_enqueue), so a
# Redis outage costs a request < 1 s and the sweeper re-enqueues the pending rows later;
# other publishes (task retries, beat) keep Celery's default retry policy.
CELERY_BROKER_CONNECTION_TIMEOUT = 2

# --- REST framework --------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Every view names its own (workflows.api.AUTHENTICATION); this is the default for new ones.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "knox.auth.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Leadline API",
    "DESCRIPTION": "HubSpot form submissions → reviewed follow-ups. See docs/api.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # `manage.py check` builds the schema with these settings too: one name for Step's choices.
    "ENUM_NAME_OVERRIDES": {"StepEnum": "workflows.models.Step"},
    # The schema and Swagger UI: staff only (issue #14), assets from drf-spectacular-sidecar
    # (static files).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Logging ---------------------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "info", LOG_LEVELS).upper()
# JSON lines to stdout and, when set, to LOG_FILE (relative to the checkout): the Procfile and
# compose set logs/app.log for web and logs/celery.log for worker and beat. See config/logging.py.
LOG_FILE = env.str("LOG_FILE", default="")
LOGGING = logging_config(LOG_LEVEL, (BASE_DIR / LOG_FILE) if LOG_FILE else None)

# --- Metrics and alerts (docs/operations.md) --------------------------------------------------
# /metrics answers loopback callers; anyone else needs `Authorization: Bearer $METRICS_TOKEN`.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Multiprocess mode (prometheus_client): each process writes samples under this directory;
# /metrics merges them with those of METRICS_EXTRA_DIRS (other containers' directories).
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
else:
    # prometheus_client switches to multiprocess mode when the variable merely exists, and
    # would then write its files into the working directory.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
METRICS_EXTRA_DIRS = [d for d in env.list("METRICS_EXTRA_DIRS", default=[]) if d]
# Operators told when a workflow fails or an approval waits past SPEED_TO_LEAD_TARGET_MINUTES.
ALERT_EMAILS = env_json_list("ALERT_EMAILS")
# A Slack-compatible incoming webhook; receives {"text": "..."}. Empty: no HTTP alerts.
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="").strip()
ALERT_LOOKBACK_HOURS = env_int("ALERT_LOOKBACK_HOURS", 24, minimum=1)

# --- issue #12: which Webhooks API events are leads (intake/routing.py) ---
# Comma-separated: contact.creation, contact.propertyChange, contact.propertyChange:<property>.
# Any other event is stored as an ignored delivery (admin: Non-lead deliveries).
from intake.routing import validate_lead_event_types  # noqa: E402  (pure; no Django state)

LEAD_EVENT_TYPES = validate_lead_event_types(
    env.list("LEAD_EVENT_TYPES", default=["contact.creation"])
)
# A contact's later deliveries join its lead for this long (HubSpot retries a workflow
# webhook for up to 3 days); after it, the contact's next enquiry is a new lead.
LEAD_CONTACT_WINDOW_HOURS = env_int("LEAD_CONTACT_WINDOW_HOURS", 72, minimum=1)

# --- issue #12: HubSpot error classes, names and the Forms poll (docs/operations.md) ----------
# HubSpot resets its daily API limit at midnight in the account's time zone (Settings →
# Account defaults); a 429 DAILY halts every HubSpot call until then. Empty (default): the
# time zone HubSpot's account details name (learnt ahead by hubspot.refresh_account; UTC
# until then). Set it only to override HubSpot.
HUBSPOT_ACCOUNT_TIME_ZONE = env.str("HUBSPOT_ACCOUNT_TIME_ZONE", default="").strip()
if HUBSPOT_ACCOUNT_TIME_ZONE:
    try:
        ZoneInfo(HUBSPOT_ACCOUNT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"HUBSPOT_ACCOUNT_TIME_ZONE={HUBSPOT_ACCOUNT_TIME_ZONE!r} is not an IANA time zone "
            "(e.g. America/New_York)."
        ) from None
# Seconds a 429 DAILY halts HubSpot calls; 0 (default) means until the daily reset above.
HUBSPOT_DAILY_PAUSE_SECONDS = env_float("HUBSPOT_DAILY_PAUSE_SECONDS", 0.0)
# HubSpot: "423 Locked: wait about 2 seconds and retry". Default 2.
HUBSPOT_LOCKED_RETRY_SECONDS = env_float("HUBSPOT_LOCKED_RETRY_SECONDS", 2.0)
# Comma-separated form GUIDs the Forms poll reads; empty: every form the Forms API lists.
HUBSPOT_FORM_IDS = [f.strip() for f in env.list("HUBSPOT_FORM_IDS", default=[]) if f.strip()]
# Minutes between Forms polls (the reconcile_forms beat job); 0 turns the beat job off.
HUBSPOT_RECONCILE_MINUTES = env_int("HUBSPOT_RECONCILE_MINUTES", 15)
# A first poll of a form (no stored high-water mark) reads back this many days. Default 7.
HUBSPOT_RECONCILE_FIRST_DAYS = env_int("HUBSPOT_RECONCILE_FIRST_DAYS", 7, minimum=1)
if HUBSPOT_RECONCILE_MINUTES:
    CELERY_BEAT_SCHEDULE["reconcile-hubspot-forms"] = {
        "task": "hubspot.reconcile_forms",
        "schedule": HUBSPOT_RECONCILE_MINUTES * 60.0,
    }

# --- issue #14: security hardening (docs/security.md) ---------------------------------------
from datetime import timedelta  # noqa: E402

from config.security import parse_cidrs  # noqa: E402

# Error reports (debug page, admin e-mails) mask URL userinfo, token-like path segments and
# query values of every setting, request.META value and frame variable (config/security.py).
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.security.SafeReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "config.security.SafeExceptionReporter"

# API tokens: django-rest-knox stores a SHA-512 digest and the first 15 characters (the prefix
# the admin shows); the token itself is printed once by `manage.py create_api_token`. The old
# plaintext DRF tokens are dropped by dashboard/migrations/0002_retire_plaintext_api_tokens.
# Lifetime of a token created without --expires-in, days. Default 90.
API_TOKEN_TTL_DAYS = env_int("API_TOKEN_TTL_DAYS", 90, minimum=1)
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

# /metrics: METRICS_TOKEN as a bearer token, or a caller in METRICS_ALLOWED_CIDRS (default:
# loopback in development, nobody elsewhere). X-Forwarded-For is read only when the direct
# peer is in TRUSTED_PROXY_CIDRS (default none); no other forwarding header is ever read.
_DEFAULT_METRICS_CIDRS = ["127.0.0.1/32", "::1/128"] if API_ENV == "development" else []
METRICS_ALLOWED_CIDRS = [
    c for c in env.list("METRICS_ALLOWED_CIDRS", default=[]) if c
] or _DEFAULT_METRICS_CIDRS
METRICS_ALLOWED_NETWORKS = parse_cidrs("METRICS_ALLOWED_CIDRS", METRICS_ALLOWED_CIDRS)
TRUSTED_PROXY_CIDRS = [c for c in env.list("TRUSTED_PROXY_CIDRS", default=[]) if c]
TRUSTED_PROXY_NETWORKS = parse_cidrs("TRUSTED_PROXY_CIDRS", TRUSTED_PROXY_CIDRS)

# Headers. CSP in every mode (so development meets the same policy): own origin only, no
# inline script or style, no eval; htmx runs with allowEval and indicator styles off
# (templates/base.html) and its indicator CSS lives in static/dashboard/dashboard.css.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# The dashboard sends the CSRF token from the page (hx-headers), never reads the cookie.
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"

# Login rate limit (django-axes): LOGIN_FAILURE_LIMIT failed logins from one client address
# lock that address out of the login for LOGIN_LOCKOUT_MINUTES (429); a success resets the
# count. The address is config.security.client_address: proxies only from TRUSTED_PROXY_CIDRS.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.security.axes_client_ip"
# Lockout log lines name the client address and path only, not the username tried. (axes
# masks both by default; on-call needs the address for `axes_reset_ip`.)
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = ["username"]
AXES_LOCKOUT_CALLABLE = "config.security.axes_lockout"

# --- issue #13: recipient cooldown ------------------------------------------------------------
# At most one email per recipient in this many hours, whatever the path (approval, auto-send,
# replay, redelivery, admin): enforced when a send is claimed (outreach/cooldown.py). 0: off.
RECIPIENT_COOLDOWN_HOURS = env_int("RECIPIENT_COOLDOWN_HOURS", 72, minimum=0)

# --- issue #17: AI drafts (docs/ai-drafts.md) ------------------------------------------------
# `template` (default) or `llm`: an OpenAI-compatible Chat Completions endpoint drafts, guarded,
# with the template draft as the floor (outreach/llm/).
OUTREACH_DRAFTER = env_choice("OUTREACH_DRAFTER", "template", ("template", "llm"))
# Empty: the OpenAI API. Any OpenAI-compatible server otherwise (Azure, vLLM, Ollama, llama.cpp).
LLM_BASE_URL = env_http_url("LLM_BASE_URL")
LLM_API_KEY = env.str("LLM_API_KEY", default="").strip()
LLM_MODEL = env.str("LLM_MODEL", default="").strip() or "gpt-4o-mini"
# The workflow never waits on the model longer than this (then the template draft is used).
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 10.0, minimum=0.1)
LLM_MAX_TOKENS = env_int("LLM_MAX_TOKENS", 800, minimum=16)
# JSON list of domains whose links an AI draft may contain (subdomains included).
LLM_ALLOWED_LINK_DOMAINS = env_domain_list("LLM_ALLOWED_LINK_DOMAINS")
# Tokens (prompt + completion) all processes together may spend per UTC day; 0: never call.
LLM_DAILY_TOKEN_BUDGET = env_int("LLM_DAILY_TOKEN_BUDGET", 200_000, minimum=0)
# AI drafts wait for a human even with ALLOW_AUTO_SEND=true, unless this is true too.
LLM_AUTO_SEND = env_bool("LLM_AUTO_SEND", False)
if OUTREACH_DRAFTER == "llm" and not (LLM_BASE_URL or LLM_API_KEY):
    raise ImproperlyConfigured(
        "OUTREACH_DRAFTER=llm needs LLM_BASE_URL (an OpenAI-compatible endpoint) or "
        "LLM_API_KEY (for the OpenAI API). `make run` starts a local model sandbox instead."
    )

# --- issue #16: outbox relay and scale-out (workflows/relay.py, docs/scaling.md) ---------------
# The relay publishes new workflows in batches of up to this many rows. Default 500.
OUTBOX_RELAY_BATCH_SIZE = env_int("OUTBOX_RELAY_BATCH_SIZE", 500, minimum=1)
# Longest wait between two looks at the outbox: the whole latency when the relay polls (SQLite,
# a transaction pooler without DATABASE_DIRECT_URL); a fallback under LISTEN/NOTIFY. Default 1.
OUTBOX_RELAY_POLL_SECONDS = env_float("OUTBOX_RELAY_POLL_SECONDS", 1.0, minimum=0.05)
# Alert when the oldest unpublished workflow is older than this (relay down). Default 30.
OUTBOX_LAG_ALERT_SECONDS = env_int("OUTBOX_LAG_ALERT_SECONDS", 30, minimum=1)
# "pgbouncer": DATABASE_URL points at PgBouncer in transaction pooling mode, so no prepared
# statements, no server-side binding or cursors, and no `options` startup parameter (PgBouncer
# refuses it: set `ALTER DATABASE … SET jit = off` on the server instead). "none": direct.
DATABASE_POOLER = env_choice("DATABASE_POOLER", "none", ("none", "pgbouncer"))
DATABASE_POOLER = "" if DATABASE_POOLER == "none" else DATABASE_POOLER
# A direct (not pooled) PostgreSQL URL for the relay's LISTEN; without it, behind a pooler the
# relay polls every OUTBOX_RELAY_POLL_SECONDS.
DATABASE_DIRECT_URL = env.str("DATABASE_DIRECT_URL", default="")
if DATABASE_POOLER and _db["ENGINE"] == "django.db.backends.postgresql":
    _db["OPTIONS"].update({"prepare_threshold": None, "server_side_binding": False})
    _db["OPTIONS"].pop("options", None)
    _db["DISABLE_SERVER_SIDE_CURSORS"] = True

# --- issue #15: first run without surprises ---------------------------------------------------
# WhiteNoise serves STATIC_ROOT (filled by `collectstatic` in the image) and, with
# WHITENOISE_USE_FINDERS, the source directories. Outside production nothing is collected, and a
# missing STATIC_ROOT made every middleware start warn "No directory at: staticfiles/" (186
# times in pytest): it exists, empty, instead.
if not PRODUCTION:
    STATIC_ROOT.mkdir(exist_ok=True)
# Files served at the site root by WhiteNoise: /favicon.ico.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"

# --- issue #15: the operator's console (docs/operations.md) ----------------------------------
# Each operator picks a time zone in the console (dashboard.OperatorPreferences; empty:
# TIME_ZONE); it is active for the dashboard and the admin (its middleware follows
# AuthenticationMiddleware), and both format times alike.
FORMAT_MODULE_PATH = ["config.formats"]

# --- issue #16: new leads in under a second ---------------------------------------------------
# A lead HubSpot's contact search does not know yet (a new contact) is drafted from the form
# at once and held for approval; its contact is attached in the background (searched again
# after CONTACT_SEARCH_LAG_*, created only after the last miss) and approval waits for it.
# false (or auto-send on): the pipeline waits for the contact before drafting, as it used to.
CONTACT_ATTACH_IN_BACKGROUND = env_bool("CONTACT_ATTACH_IN_BACKGROUND", True)
