"""HubSpot's Forms APIs: form definitions (marketing v3) and submissions (form-integrations v1).

Submissions come newest first, at most 50 a page, paged with `after`
(https://legacydocs.hubspot.com/docs/methods/forms/get-submissions-for-a-form).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from workflows.hubspot import account
from workflows.hubspot.client import HubSpotClient, PermanentHubSpotError, path_segment

SUBMISSIONS_PAGE = 50  # HubSpot's maximum `limit` for form submissions


def account_portal_id(client: HubSpotClient, *, remember: bool = True) -> int:
    """The HubSpot account (portal) id the token belongs to (GET /account-info/v3/details).
    The account's time zone, in the same answer, is remembered for the daily limit's reset
    (not by a dry run, which records nothing)."""
    details = account.account_details(client)
    if remember:
        account.remember(details)
    return int(details["portalId"])


def get_form(client: HubSpotClient, form_id: str) -> dict[str, Any] | None:
    """The form definition (id, name, fieldGroups …), or None when HubSpot has no such form."""
    try:
        return client.get(f"/marketing/v3/forms/{path_segment(form_id)}", "forms.get")
    except PermanentHubSpotError as error:
        if error.status == 404:
            return None
        raise


def iter_forms(client: HubSpotClient) -> Iterator[dict[str, Any]]:
    """Every form of the account, page by page."""
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if after:
            params["after"] = after
        page = client.get("/marketing/v3/forms", "forms.list", params=params)
        yield from page.get("results") or []
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return


def iter_submissions(client: HubSpotClient, form_id: str) -> Iterator[dict[str, Any]]:
    """The form's submissions, newest first; stop iterating to stop paging."""
    path = f"/form-integrations/v1/submissions/forms/{path_segment(form_id)}"
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": SUBMISSIONS_PAGE}
        if after:
            params["after"] = after
        page = client.get(path, "forms.submissions", params=params)
        yield from page.get("results") or []
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return
