"""Structured logging: one JSON object per line, with request/task context and redaction.

Every process (gunicorn master and workers, Celery worker and beat, manage.py) configures
logging from ``logging_config()``, so no plain-text formatter is left anywhere: a newline or
a quote in an untrusted string is escaped by the JSON encoder and cannot forge a line.

Context (request_id, task_id, workflow_id, …) lives in a ContextVar, set by
``RequestIdMiddleware`` for a request and by Celery's task_prerun/task_postrun signals for a
task, and is added to every line emitted meanwhile.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_context: ContextVar[dict[str, Any] | None] = ContextVar("leadline_log_context", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRS = frozenset(
    logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__
) | {"message", "asctime", "taskName"}

# Keys whose values are secrets: dropped whatever they hold.
_SECRET_KEY = re.compile(
    r"(authorization|password|passwd|secret|token|api[_-]?key|cookie)", re.IGNORECASE
)
# Email content: a log line may say that a body exists, never what it says.
# (Celery's ``return_value`` too: a task's result can quote lead text.)
_BODY_KEYS = frozenset(
    {"body", "body_html", "hs_task_body", "hs_note_body", "original_body", "return_value"}
)
_BEARER = re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
# Lead PII and HubSpot credentials, masked wherever they appear (issue #14): an address keeps
# its first character and its domain (j***@othercorp.com), a phone number its last two digits.
_EMAIL = re.compile(
    r"([A-Za-z0-9!#$%&'*+=?^_`{|}~-])[A-Za-z0-9.!#$%&'*+=?^_`{|}~-]*(@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)
_PHONE = re.compile(
    r"(?<![\w.:/+-])(?:\+\d[\d\s().-]{5,}\d|\(?\d{2,4}\)?(?:[\s.-]\(?\d{2,4}\)?){1,4})(?![\w.:/-])"
)
_DATE_OR_IP = re.compile(r"^(\d{4}-\d{2}-\d{2}|\d{1,3}(\.\d{1,3}){3})$")
_HUBSPOT_TOKEN = re.compile(
    r"\bpat-[a-z]{2,4}\d?-[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b"
    r"|\b((?:hapikey|access_token|refresh_token|code)=)[^&\s\"']+",
    re.IGNORECASE,
)
MAX_VALUE_CHARS = 2000
REDACTED = "[redacted]"


def get_context() -> dict[str, Any]:
    return dict(_context.get() or {})


def bind(**values: Any) -> Token:
    """Add ``values`` to the context of every log line from here on; reset with the token."""
    return _context.set(
        {**(_context.get() or {}), **{k: v for k, v in values.items() if v is not None}}
    )


def reset(token: Token) -> None:
    _context.reset(token)


def _secret_values() -> list[str]:
    """Configured secrets, so that a secret quoted inside a message is masked as well."""
    names = (
        "HUBSPOT_CLIENT_SECRET",
        "HUBSPOT_ACCESS_TOKEN",
        "SECRET_KEY",
        "METRICS_TOKEN",
        "LLM_API_KEY",
    )
    values = [os.environ.get(name, "") for name in names]
    from django.conf import settings

    if settings.configured:
        values += [str(getattr(settings, name, "") or "") for name in names]
    return [v for v in set(values) if len(v) >= 8]


def _mask_phone(match: re.Match) -> str:
    found = match.group(0)
    digits = sum(c.isdigit() for c in found)
    if not 7 <= digits <= 15 or _DATE_OR_IP.match(found.strip()):
        return found
    return "***" + "".join(c for c in found if c.isdigit())[-2:]


def mask_pii(text: str) -> str:
    """URL credentials, email addresses, phone numbers and HubSpot tokens in ``text`` masked."""
    if "://" in text:
        from config.security import mask_urls_in

        text = mask_urls_in(text)
    if "@" in text:
        text = _EMAIL.sub(r"\1***\2", text)
    text = _HUBSPOT_TOKEN.sub(lambda m: (m.group(1) or "") + REDACTED, text)
    return _PHONE.sub(_mask_phone, text)


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    for secret in secrets if secrets is not None else _secret_values():
        text = text.replace(secret, REDACTED)
    text = _BEARER.sub(r"\1" + REDACTED, text)
    text = mask_pii(text)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + f"…[{len(text) - MAX_VALUE_CHARS} chars truncated]"
    return text


def redact(value: Any, secrets: list[str], depth: int = 0) -> Any:
    """Drop secret and email-body keys, mask secret values, truncate long strings."""
    if depth > 5:
        return "[nested]"
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            key = str(key)
            if key.lower() in _BODY_KEYS:
                out[key] = f"[{len(str(item))} chars omitted]"
            elif _SECRET_KEY.search(key):
                out[key] = REDACTED
            else:
                out[key] = redact(item, secrets, depth + 1)
        return out
    if isinstance(value, list | tuple | set):
        return [redact(item, secrets, depth + 1) for item in list(value)[:50]]
    if isinstance(value, str):
        return redact_text(value, secrets)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(str(value), secrets)


class RedactingFilter(logging.Filter):
    """Runs on every handler: scrubs the message and the `extra` fields of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):  # already seen by another handler
            return True
        record._redacted = True
        secrets = _secret_values()
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format must still produce a line
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact_text(message, secrets), None
        for key in [k for k in record.__dict__ if k not in _RECORD_ATTRS and k[0] != "_"]:
            if key.lower() in _BODY_KEYS or _SECRET_KEY.search(key):
                record.__dict__[key] = redact({key: record.__dict__[key]}, secrets)[key]
            else:
                record.__dict__[key] = redact(record.__dict__[key], secrets)
        return True


def _mask_deep(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, dict) and depth < 6:
        return {k: _mask_deep(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple) and depth < 6:
        return [_mask_deep(v, depth + 1) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """ts, level, logger, message, then the context, then the record's `extra` fields.

    The last step before the line is written masks lead PII and HubSpot tokens in every
    value (context and traceback included), whatever filters did or did not run before.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_context.get() or {})
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in line and key[0] != "_":
                line[key] = value
        if record.exc_info:
            line["exc"] = redact_text(self.formatException(record.exc_info))
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        ts = line.pop("ts")
        line = {"ts": ts, **_mask_deep(line)}
        return json.dumps(line, default=str, ensure_ascii=False)


#: The accepted values of LOG_LEVEL (any case).
LOG_LEVELS = ("debug", "info", "warning", "error")


def logging_config(level: str = "INFO", log_file: str | Path | None = None) -> dict[str, Any]:
    """The dictConfig for every Leadline process: JSON to stdout, and to ``log_file`` if set."""
    handlers: dict[str, dict[str, Any]] = {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["redact"],
        }
    }
    if log_file:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Watched: logrotate may move the file; the handler reopens it instead of writing
        # into the rotated one.
        handlers["file"] = {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": str(path),
            "encoding": "utf-8",
            "formatter": "json",
            "filters": ["redact"],
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactingFilter}},
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": handlers,
        "root": {"handlers": list(handlers), "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # gunicorn and celery add their own handlers unless told otherwise: everything
            # goes up to the root's JSON handlers instead.
            "gunicorn.error": {"handlers": [], "propagate": True, "level": level},
            "gunicorn.access": {"handlers": [], "propagate": True, "level": "INFO"},
            "celery": {"handlers": [], "propagate": True, "level": level},
        },
    }


REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


class RequestIdMiddleware:
    """Tags every log line of a request with request_id (the caller's X-Request-ID if it
    looks like an id, else a fresh one) and returns it in the X-Request-ID response header."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = bind(request_id=request_id)
        try:
            response = self.get_response(request)
        finally:
            reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


_task_tokens: dict[str, Token] = {}


def connect_celery_signals() -> None:
    """Celery logs through our handlers, and a task's lines carry task_id and workflow_id.

    Idempotent: the receivers are connected once (dispatch_uid)."""
    from celery.signals import setup_logging, task_postrun, task_prerun

    @setup_logging.connect(weak=False, dispatch_uid="leadline.logging")
    def _use_django_logging(**kwargs: Any) -> None:
        # Connecting this signal stops Celery from installing its own (plain-text) handlers.
        from logging.config import dictConfig

        from django.conf import settings

        dictConfig(settings.LOGGING)

    @task_prerun.connect(weak=False, dispatch_uid="leadline.logging")
    def _bind_task(task_id: str = "", task: Any = None, args: Any = None, **kwargs: Any) -> None:
        task_kwargs = kwargs.get("kwargs") or {}
        workflow_id = task_kwargs.get("workflow_id")
        if workflow_id is None and args and isinstance(args[0], int):
            workflow_id = args[0]
        _task_tokens[task_id] = bind(
            task_id=task_id, task=getattr(task, "name", None), workflow_id=workflow_id
        )

    @task_postrun.connect(weak=False, dispatch_uid="leadline.logging")
    def _unbind_task(task_id: str = "", **kwargs: Any) -> None:
        token = _task_tokens.pop(task_id, None)
        if token is not None:
            try:
                reset(token)
            except ValueError:  # set in another context (should not happen); just clear
                _context.set({})
