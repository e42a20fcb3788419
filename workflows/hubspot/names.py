"""Names for HubSpot ids: form names (GET /marketing/v3/forms/{id}) and owner names
(GET /crm/v3/owners/{id}), cached in the hubspot_name table.

Pages never call HubSpot: they read the table (display_name). A name missing or older than a
day is fetched by the ``hubspot.refresh_names`` task, which a page enqueues on a miss and beat
runs daily for every id in use.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.utils import timezone

from workflows.hubspot import forms
from workflows.hubspot.client import HubSpotClient, kept_client
from workflows.hubspot.models import HubSpotName, NameKind

log = logging.getLogger("leadline.hubspot.names")

MAX_AGE = timedelta(days=1)
# A page shows many rows with a few ids: read all names of a kind in one query and keep them
# for a minute per process (the table holds one row per form and per owner: small).
_LOCAL_SECONDS = 60.0
_local: dict[str, tuple[float, dict[str, tuple[str, object]]]] = {}
_requested: dict[tuple[str, str], float] = {}
_publish_blocked_until = 0.0
_lock = threading.Lock()


def display_name(kind: str, hubspot_id: str) -> str:
    """The cached name, or "" when unknown (the caller shows the id). On a miss or a name
    older than a day, asks the worker to fetch it (at most once a minute per id and process)."""
    if not hubspot_id:
        return ""
    hubspot_id = str(hubspot_id)
    now = time.monotonic()
    with _lock:
        loaded = _local.get(kind)
    if loaded is None or now - loaded[0] >= _LOCAL_SECONDS:
        rows = HubSpotName.objects.filter(kind=kind).values_list("hubspot_id", "name", "fetched_at")
        loaded = (now, {i: (name, fetched_at) for i, name, fetched_at in rows})
        with _lock:
            _local[kind] = loaded
    name, fetched_at = loaded[1].get(hubspot_id, ("", None))
    if fetched_at is None or fetched_at < timezone.now() - MAX_AGE:
        _request_refresh((kind, hubspot_id), now)
    return name


def _request_refresh(key: tuple[str, str], now: float) -> None:
    global _publish_blocked_until
    with _lock:
        if now < _publish_blocked_until:
            return
        if now - _requested.get(key, float("-inf")) < _LOCAL_SECONDS:
            return
        _requested[key] = now
    from workflows.hubspot.tasks import refresh_names

    try:
        refresh_names.apply_async(kwargs={"kind": key[0], "ids": [key[1]]}, retry=False)
    except Exception:  # a broker outage must not break a page; the daily refresh catches up
        # Hold every other miss back for a minute: one slow connect per page, not one per id.
        with _lock:
            _publish_blocked_until = now + _LOCAL_SECONDS
        log.warning("could not enqueue a name refresh", extra={"kind": key[0]})


def names_refresh(
    *, kind: str, ids: Iterable[str], client: HubSpotClient | None = None
) -> dict[str, str]:
    """Fetch and store the names of these ids from HubSpot; returns {id: name}.

    Idempotent. An id HubSpot does not know is stored with an empty name (asked again after a
    day). Calls HubSpot (throttled); raises HubSpotError subclasses on failure."""
    client = client or kept_client()
    if client is None:
        return {}
    found: dict[str, str] = {}
    for hubspot_id in dict.fromkeys(str(i) for i in ids if i):
        found[hubspot_id] = _fetch(client, kind, hubspot_id)
        HubSpotName.objects.update_or_create(
            kind=kind,
            hubspot_id=hubspot_id,
            defaults={"name": found[hubspot_id][:255], "fetched_at": timezone.now()},
        )
        with _lock:
            _local.pop(kind, None)
    return found


def _fetch(client: HubSpotClient, kind: str, hubspot_id: str) -> str:
    if kind == NameKind.FORM:
        form = forms.get_form(client, hubspot_id)
        return str((form or {}).get("name") or "")
    owner = client.get_owner(hubspot_id)
    if not owner:
        return ""
    name = owner_name(owner) or str(owner.get("email") or "")
    return f"{name} (deactivated)" if name and owner.get("archived") else name


def owner_name(owner: Mapping[str, Any]) -> str:
    """A HubSpot owner's display name: first and last name, whichever are set ("" if neither)."""
    return " ".join(p for p in (owner.get("firstName"), owner.get("lastName")) if p)


def ids_in_use() -> dict[str, list[str]]:
    """Form ids and owner ids Leadline shows, for the daily refresh."""
    from intake.models import FormSubmission
    from workflows.models import Workflow

    form_ids = FormSubmission.objects.exclude(form_id="").values_list("form_id", flat=True)
    owner_ids = Workflow.objects.exclude(owner_id="").values_list("owner_id", flat=True)
    return {
        NameKind.FORM: sorted(set(form_ids.distinct())),
        NameKind.OWNER: sorted(set(owner_ids.distinct())),
    }
