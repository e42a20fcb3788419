from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django import template
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from dashboard import texts

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


def _relative(value: dt.datetime) -> str:
    delta = timezone.now() - value
    if delta.total_seconds() < 0:
        return f"in {duration(-delta)}"
    return f"{duration(delta)} ago"


@register.filter
def when(value: dt.datetime | None, style: str = "") -> str:
    """A time in the operator's zone, the zone named, its age beside it.

    ``when`` → "2026-12-01 06:03 CET (4m ago)"; ``when:"s"`` adds seconds; ``when:"age"``
    leads with the age and shows the absolute time small (tables); ``when:"abs"`` is the time
    alone, beside an age shown otherwise. The zone's full name and the UTC time are on hover.
    """
    if value is None:
        return "—"
    if not isinstance(value, dt.datetime):
        return str(value)
    local = timezone.localtime(value)
    stamp = date_format(local, "Y-m-d H:i:s T" if style == "s" else "Y-m-d H:i T")
    zone = timezone.get_current_timezone_name()
    utc = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    title = f"{zone} · {utc}"
    if style == "abs":  # beside an age shown already (the inbox's clock)
        return format_html(
            '<time datetime="{}" title="{}">{}</time>', value.isoformat(), title, stamp
        )
    if style == "age":
        return format_html(
            '<time datetime="{}" title="{} · {}">{}</time><span class="abs">{}</span>',
            value.isoformat(),
            stamp,
            title,
            _relative(value),
            stamp,
        )
    return format_html(
        '<time datetime="{}" title="{}">{}</time> <span class="ago">({})</span>',
        value.isoformat(),
        title,
        stamp,
        _relative(value),
    )


@register.simple_tag
def zone_name() -> str:
    """The active zone's name and abbreviation now: "Europe/Berlin (CET)"."""
    name = timezone.get_current_timezone_name()
    abbreviation = timezone.localtime().strftime("%Z")
    return name if abbreviation in ("", name) else f"{name} ({abbreviation})"


@register.filter
def gate_text(reason: str) -> texts.GateText:
    return texts.gate_text(reason)


@register.simple_tag
def outcome_text(workflow, draft) -> str:
    return texts.outcome_text(workflow, draft)


@register.filter
def drafted_by(draft) -> str:
    """Which template or drafter wrote the text: "the template “default”", "the AI model …"."""
    if draft is None:
        return ""
    if draft.drafter == "llm":
        model = f" ({draft.ai_model})" if draft.ai_model else ""
        return f"the AI drafter{model}"
    name = draft.template.removeprefix("outreach/emails/")
    if draft.drafter not in ("", "template"):
        return f"the {draft.drafter} drafter, template “{name}”"
    return f"the template “{name}”"


@register.filter
def timeline_text(text: str) -> str:
    """A timeline line: a gate reason in operator words (past events: no advice on what to
    do next), anything else as recorded."""
    reading = texts.gate_text(text)
    if not text or reading.text == text[:1].upper() + text[1:]:
        return text
    return reading.text.replace(" " + texts.HANDS_OVER, "")


@register.filter
def has_form_name(form_id: str) -> bool:
    """Whether HubSpot's name for this form is known (then the id is worth showing beside it)."""
    from workflows.hubspot.names import NameKind, display_name

    return bool(form_id) and bool(display_name(NameKind.FORM, str(form_id)))


@register.filter
def has_owner_name(owner_id: str) -> bool:
    from workflows.hubspot.names import NameKind, display_name

    return bool(owner_id) and bool(display_name(NameKind.OWNER, str(owner_id)))
