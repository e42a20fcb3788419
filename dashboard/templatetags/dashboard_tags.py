from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def duration(value: dt.timedelta | None) -> str:
    """Compact human duration: 45s, 12m, 3h 05m, 2d 4h."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    if seconds < 0:
        seconds = 0
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


@register.filter
def age(value: dt.datetime | None) -> str:
    """How long ago, compactly (the speed-to-lead clock reads this)."""
    if value is None:
        return "—"
    return duration(timezone.now() - value)


@register.filter
def pretty_json(value: Any) -> str:
    """Indented JSON text; the template autoescapes it."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
