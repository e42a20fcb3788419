"""{{ form_id|form_name }} and {{ owner_id|owner_name }}: HubSpot's name, the id on hover."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from workflows.hubspot.names import NameKind, display_name

register = template.Library()


def _labelled(kind: str, hubspot_id: object) -> str:
    if not hubspot_id:
        return "—"
    name = display_name(kind, str(hubspot_id))
    if not name:
        return format_html('<span title="{}">{}</span>', hubspot_id, hubspot_id)
    return format_html('<span title="{}">{}</span>', hubspot_id, name)


@register.filter
def form_name(form_id: object) -> str:
    return _labelled(NameKind.FORM, form_id)


@register.filter
def owner_name(owner_id: object) -> str:
    return _labelled(NameKind.OWNER, owner_id)
