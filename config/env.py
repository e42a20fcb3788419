"""Strict readers for environment variables, shared by settings.py and config/gunicorn.py.

Each refuses a malformed value with ImproperlyConfigured naming the variable, instead of
silently falling back. ``.env`` at the repository root is read first (without overriding
what the environment already has).
"""

from __future__ import annotations

import json
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def var_dir() -> Path:
    """Runtime state (SQLite, the filesystem broker, `make run`'s var/run/<port>/, the dev secret):
    LEADLINE_VAR_DIR, from the environment or .env, else var/ in the checkout (issue #15).

    The one reading of it: settings.VAR_DIR, config.runstate and (through `python -m
    config.runstate shell-vars`) scripts/run.sh, which does not read .env itself.
    """
    return Path(env.str("LEADLINE_VAR_DIR", default="") or BASE_DIR / "var")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool) -> bool:
    """A boolean that refuses typos: `MODE_DRAFT_ONLY=maybe` must not silently mean False."""
    raw = env.str(name, default="").strip().lower()
    if raw == "":
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean; use one of true/false, 1/0, yes/no, on/off."
    )


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.str(name, default="").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.str(name, default="").strip()
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if not value >= minimum:  # also refuses nan
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    return value


def env_json_list(name: str) -> list[str]:
    """A JSON list of strings, e.g. SEND_EMAIL_ALLOWLIST='["sales@company.com", "@company.com"]'."""
    raw = env.str(name, default="").strip()
    if raw == "":
        return []
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(
            f"{name} must be a JSON list of strings, e.g. '[\"sales@company.com\"]': {exc.msg}."
        ) from None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ImproperlyConfigured(f"{name} must be a JSON list of non-empty strings.")
    return [v.strip().lower() for v in value]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.str(name, default="").strip().lower() or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of {', '.join(choices)}.")
    return value


def env_http_url(name: str) -> str:
    """An optional http(s) URL without a trailing slash, e.g. LLM_BASE_URL."""
    from urllib.parse import urlsplit

    raw = env.str(name, default="").strip()
    if raw == "":
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not an http(s) URL, e.g. 'http://127.0.0.1:8080/v1'."
        )
    return raw.rstrip("/")


def env_domain_list(name: str) -> list[str]:
    """A JSON list of domain names, e.g. LLM_ALLOWED_LINK_DOMAINS='["company.com"]'."""
    import re

    label = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    domains = [d.removeprefix("@").removeprefix(".") for d in env_json_list(name)]
    bad = [d for d in domains if not re.fullmatch(rf"{label}(?:\.{label})+", d)]
    if bad:
        raise ImproperlyConfigured(
            f"{name} must be a JSON list of domain names like 'company.com': "
            f"{', '.join(map(repr, bad))} is not one."
        )
    return domains
