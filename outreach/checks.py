"""`manage.py check` (and runserver) fail when the send mode is a configuration error."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Warning, register

from outreach.gate import validate_send_mode


@register("outreach")
def check_send_mode(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        warnings = validate_send_mode()
    except ValueError as exc:
        return [
            Error(
                str(exc),
                hint="See .env.example: sending needs API_ENV=production, "
                "MODE_DRAFT_ONLY=false and a non-empty SEND_EMAIL_ALLOWLIST.",
                id="outreach.E001",
            )
        ]
    return [Warning(text, id="outreach.W001") for text in warnings]
