"""Small display helpers shared by the apps' admin registrations."""

from __future__ import annotations

import json
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString


def pretty_json(value: Any) -> SafeString:
    """Read-only, escaped, indented JSON for raw payloads and step outputs."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)
