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
    return format_html('<pre class="pre-wrap">{}</pre>', text)


class SafeChangeList(ChangeList):
    """Filters Django would turn into a 500, refused as bad filters instead (Django's "?e=1"
    redirect, as for any other bad lookup):
    - an out-of-range date-hierarchy value: Django answers "?e=1" for a ValueError but not for
      an OverflowError (``?created_at__year=99999999999999999999999``);
    - a NUL anywhere in a filter (``?trigger__exact=%00``): the lookup is built lazily, and
      PostgreSQL refuses NUL in text only when the page's query runs, after Django's own
      lookup checks."""

    def get_filters(self, request: HttpRequest) -> Any:
        for name, values in self.get_filters_params().items():
            if "\x00" in name or any("\x00" in value for value in values):
                raise IncorrectLookupParameters(f"NUL in the filter {name!r}")
        try:
            return super().get_filters(request)
        except OverflowError as exc:
            raise IncorrectLookupParameters(exc) from exc


class SafeFilters:
    """Mix into every ModelAdmin: its changelist refuses filters that would be a server error
    (SafeChangeList) with Django's "?e=1" redirect."""

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return SafeChangeList


class ReadOnlyAdmin:
    """For records the admin shows but must not change (issue #15): no Add, no Save, no
    Delete. Changes go through the services (state machine, erasure), never a plain form."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
