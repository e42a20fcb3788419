"""Small display helpers shared by the apps' admin registrations."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString


def pretty_json(value: Any) -> SafeString:
    """Read-only, escaped, indented JSON for raw payloads and step outputs."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


class SafeChangeList(ChangeList):
    """Django turns a bad date-hierarchy value into "?e=1" for a ValueError but not for an
    OverflowError (``?created_at__year=99999999999999999999999``): a 500. Same answer for both."""

    def get_filters(self, request: HttpRequest) -> Any:
        try:
            return super().get_filters(request)
        except OverflowError as exc:
            raise IncorrectLookupParameters(exc) from exc


class SafeDateHierarchy:
    """Mix into a ModelAdmin with a ``date_hierarchy``: an out-of-range date is refused as a bad
    filter (Django's "?e=1" redirect), never a server error."""

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return SafeChangeList
