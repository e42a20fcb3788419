"""Operator pages. Views are thin: parse a form, call one selector or service, render.

Every view is wrapped in ``staff_required`` (login, then is_staff), so anonymous visitors are
sent to the login page and non-staff accounts get 403; the approve/reject/replay permissions
are enforced by the services themselves, and their PermissionDenied becomes a readable 403.
htmx requests get the page's partial; errors in htmx requests are retargeted to ``#flash``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import asdict
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import reswap, retarget

from dashboard import charts, selectors, timezones
from dashboard.forms import (
    ApproveForm,
    BulkDecisionForm,
    DraftForm,
    FilterForm,
    PreferencesForm,
    RejectForm,
    ReplayFailedForm,
    ReplayForm,
    ResolveSendForm,
    is_id,
    versions_from,
)
from dashboard.models import OperatorPreferences, time_zone_names
from outreach.models import EmailDraft
from outreach.services import (
    REFUSALS,
    ActionResult,
    draft_edit,
    message_id_for,
    refused,
    resolve_unknown_send,
    workflow_approve,
    workflow_reject,
    workflows_decide,
)
from workflows.messages import action_text, replay_text
from workflows.models import Status, Workflow
from workflows.services import workflows_replay

#: "Replay all failed matching this filter" acts on at most this many rows per click.
REPLAY_FAILED_MAX = 5000
INBOX_LIMIT = 100


# --- Access and responses -----------------------------------------------------------------------


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Login required (302 to the login page), then staff required (403)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            # Every dashboard page would refuse this account again: the page offers a way to
            # another account instead of a link back into the dashboard.
            return message_response(
                request,
                "The dashboard is for staff accounts only.",
                status=403,
                context={"not_staff": True},
            )
        return view(request, *args, **kwargs)

    return login_required(wrapper)


def message_response(
    request: HttpRequest, message: str, *, status: int, context: dict[str, Any] | None = None
) -> HttpResponse:
    """A small message fragment (htmx: swapped into #flash) or a minimal page."""
    level = "error" if status >= 400 else "success"
    context = {**(context or {}), "notice": {"level": level, "text": message}}
    if request.htmx:
        response = render(request, "dashboard/_notice.html", context, status=status)
        if status >= 400:
            response = reswap(retarget(response, "#flash"), "innerHTML")
        return response
    return render(request, "dashboard/message.html", context, status=status)


def _run(request: HttpRequest, action: Callable[[], Any]) -> tuple[Any, HttpResponse | None]:
    """Call a service, turning its refusals into readable 4xx responses."""
    try:
        return action(), None
    except PermissionDenied as exc:
        text = str(exc) or "You do not have permission to do that."
        return None, message_response(request, f"Not allowed: {text}", status=403)
    except Workflow.DoesNotExist:
        return None, message_response(request, "No such workflow.", status=404)
    except REFUSALS as exc:  # bad input, wrong state, no draft: as the API answers them
        refusal = refused(exc)
        return None, message_response(request, refusal.message, status=refusal.http_status)


def _form_errors(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


# --- List ---------------------------------------------------------------------------------------


@staff_required
@require_GET
@vary_on_headers("HX-Request", "HX-Target")
def workflow_list(request: HttpRequest) -> HttpResponse:
    form = FilterForm(request.GET)
    if not form.is_valid():
        return message_response(request, f"Invalid filter: {_form_errors(form)}", status=400)
    filters = form.filters()
    before, after = request.GET.get("before", ""), request.GET.get("after", "")
    if any(token and selectors.decode_cursor(token) is None for token in (before, after)):
        return message_response(
            request, "That page link is invalid; start again from the first page.", status=400
        )
    with selectors.serial_plans(filters):
        page = selectors.workflow_page(filters, before=before, after=after)
        stamp = selectors.data_stamp()  # counts, chart and replay button all read this moment
        counts = selectors.status_counts(filters, stamp)
    context: dict[str, Any] = {
        "filter_form": form,
        "filters": filters,
        "page": page,
        "filter_query": _filter_query(filters),
        "poll_url": request.get_full_path(),
        "nav": "list",
    }
    context["tabs"] = _tabs(filters, counts)
    # The button counts what it would replay (failed_matching), not every failed row: a row
    # already replayed, or with a live run, is not replayed again.
    replayable = counts[selectors.REPLAYABLE]
    context["failed_count"] = str(replayable) if replayable.n else ""
    context["failed_left"] = bool(counts[Status.FAILED].n)
    # A poll refreshes the table and, out of band, the tab counts, the replay button and the
    # overview: all cached under one data stamp, so they show the same moment (issue #15).
    if request.htmx and request.htmx.target == "workflow-table":
        context.update(_overview_context(stamp))
        return render(request, "dashboard/_list_poll.html", context)
    if request.htmx:
        context["oob_status"] = True
        return render(request, "dashboard/_workflow_results.html", context)
    # The overview (chart, medians) reads a week of history: it loads after the page, from
    # overview_fragment, so the list never waits for it.
    context["forms"] = selectors.form_choices()
    return render(request, "dashboard/workflow_list.html", context)


@staff_required
@require_GET
def overview_fragment(request: HttpRequest) -> HttpResponse:
    """The chart of the last 7 days and the speed medians (cached a minute)."""
    return render(request, "dashboard/_overview.html", _overview_context())


def _overview_context(stamp: str | None = None) -> dict[str, Any]:
    data = selectors.overview(stamp=stamp)
    return {
        "chart": charts.stacked_bars(data["per_day"], selectors.OUTCOMES),
        "median_to_draft": data["median_to_draft"],
        "median_to_approval": data["median_to_approval"],
    }


def _filter_query(filters: selectors.WorkflowFilters, **overrides: str) -> str:
    params = {
        "status": filters.status,
        "q": filters.q,
        "form": filters.form_id,
        "date_from": filters.date_from.isoformat() if filters.date_from else "",
        "date_to": filters.date_to.isoformat() if filters.date_to else "",
        **overrides,
    }
    return urlencode({k: v for k, v in params.items() if v})


def _tabs(
    filters: selectors.WorkflowFilters, counts: dict[str, selectors.TabCount]
) -> list[dict[str, Any]]:
    return [
        {
            "status": value,
            "label": label,
            "count": str(counts[value]),
            "query": _filter_query(filters, status=value),
        }
        for value, label in [("", "All"), *Status.choices]
    ]


@staff_required
@require_POST
def replay_failed(request: HttpRequest) -> HttpResponse:
    """Replay every failed workflow matching the list's filter (one service call)."""
    filter_form = FilterForm(request.POST)
    if not filter_form.is_valid():  # never widen "every failed match" to every failed row
        return message_response(request, f"Invalid filter: {_form_errors(filter_form)}", status=400)
    filters = filter_form.filters()
    confirm = ReplayFailedForm(request.POST)
    if not confirm.is_valid():
        return message_response(request, _form_errors(confirm), status=400)
    ids, capped = selectors.replay_candidates(filters, limit=REPLAY_FAILED_MAX)
    if not ids:
        return message_response(request, "No failed workflows match this filter.", status=200)
    result, error = _run(
        request,
        lambda: workflows_replay(
            workflow_ids=ids, user=request.user, reason="dashboard: replay all failed"
        ),
    )
    if error:
        return error
    text = replay_text(result, failed=True)
    if capped:  # the dashboard's addition: the button replays at most REPLAY_FAILED_MAX
        text = text.removesuffix(".") + "; press again for the rest."
    if request.htmx:
        return message_response(request, text, status=200)
    messages.success(request, text)
    return redirect(f"{reverse('dashboard:workflow_list')}?{_filter_query(filters)}")


@staff_required
@require_POST
def replay_selected(request: HttpRequest) -> HttpResponse:
    """Replay the rows ticked in the list (one service call)."""
    ids = [int(v) for v in request.POST.getlist("ids") if is_id(v)]
    if not ids:
        return message_response(request, "Select at least one workflow to replay.", status=400)
    result, error = _run(
        request,
        lambda: workflows_replay(
            workflow_ids=ids, user=request.user, reason="dashboard: replay selected"
        ),
    )
    if error:
        return error
    text = replay_text(result)  # the admin's "Replay selected" and manage.py replay too
    if request.htmx:
        return message_response(request, text, status=200)
    messages.success(request, text)
    return redirect("dashboard:workflow_list")


# --- Detail -------------------------------------------------------------------------------------


def _detail_context(pk: int) -> dict[str, Any]:
    try:
        workflow = selectors.workflow_detail(pk)
    except Workflow.DoesNotExist:
        raise Http404("No such workflow.") from None
    draft = getattr(workflow, "draft", None)
    submission = workflow.submission
    return {
        "workflow": workflow,
        "submission": submission,
        "draft": draft,
        "message_id": message_id_for(draft) if draft else "",
        "timeline": selectors.workflow_timeline(workflow),
        "other_runs": selectors.other_runs(workflow),
        "hubspot": _hubspot_links(submission.portal_id, workflow),
        "diff": _draft_diff(draft),
        "send_unknown": selectors.send_outcome_unknown(workflow),
        "draft_form": DraftForm(
            initial={"subject": draft.subject, "body": draft.body, "version": draft.version}
        )
        if draft
        else None,
        "reject_form": RejectForm(initial={"version": draft.version if draft else 1}),
        "resolve_form": ResolveSendForm(),
        "replay_form": ReplayForm(),
        "awaiting": workflow.status == Status.AWAITING_APPROVAL,
        "ai_drafting": settings.OUTREACH_DRAFTER == "llm",  # issue #17
    }


def _hubspot_links(portal_id: int | None, workflow: Workflow) -> dict[str, str]:
    if not portal_id:
        return {}
    links = {"tasks": f"https://app.hubspot.com/tasks/{portal_id}/view/all"}
    if workflow.contact_id:
        links["contact"] = (
            f"https://app.hubspot.com/contacts/{portal_id}/record/0-1/{workflow.contact_id}"
        )
    return links


def _draft_diff(draft: EmailDraft | None) -> list[tuple[str, str]]:
    """Drafted → current (approved) text as (css class, line); rendered escaped."""
    if draft is None or not draft.was_edited:
        return []
    before = [f"Subject: {draft.original_subject}", "", *draft.original_body.splitlines()]
    after = [f"Subject: {draft.subject}", "", *draft.body.splitlines()]
    lines = []
    for line in difflib.unified_diff(before, after, "drafted", "current", lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "ctx")
        lines.append((kind, line))
    return lines


@staff_required
@require_GET
@vary_on_headers("HX-Request")
def workflow_detail(request: HttpRequest, pk: int) -> HttpResponse:
    context = _detail_context(pk)
    template = "dashboard/_detail_body.html" if request.htmx else "dashboard/workflow_detail.html"
    return render(request, template, context)


def _after_action(request: HttpRequest, pk: int, level: str, text: str) -> HttpResponse:
    """htmx: the refreshed detail body with the outcome on top; otherwise redirect (PRG)."""
    if request.htmx:
        context = _detail_context(pk)
        context["notice"] = {"level": level, "text": text}
        return render(request, "dashboard/_detail_body.html", context)
    getattr(messages, level)(request, text)
    return redirect("dashboard:workflow_detail", pk=pk)


def _after_result(request: HttpRequest, pk: int, result: ActionResult) -> HttpResponse:
    # ok=False is a lost race (someone decided first): not an error, but worth a warning.
    level = "success" if result.ok else "warning"
    return _after_action(request, pk, level, action_text(result.message))


def _from_inbox_row(request: HttpRequest) -> bool:
    """An action taken on an inbox row (htmx): the answer is that row, not the detail page."""
    return bool(request.htmx) and request.POST.get("inbox_row") == "1"


def _inbox_row(request: HttpRequest, pk: int, *, kind: str = "", text: str = "") -> HttpResponse:
    """The row again: decided ("done" with what happened) or still waiting (after an edit)."""
    workflow = selectors.inbox_row(pk)
    if workflow is None:
        raise Http404("No such workflow.")
    _prepare_inbox_rows([workflow])
    done = {"kind": kind, "text": text} if kind else None
    if done is None and workflow.status != Status.AWAITING_APPROVAL:
        done = {"kind": "gone", "text": "No longer waiting for approval."}
    context = {"w": workflow, "done": done, **_inbox_permissions(request)}
    return render(request, "dashboard/_inbox_row.html", context)


@staff_required
@require_POST
def workflow_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    form = ApproveForm(request.POST)
    if not form.is_valid():
        return message_response(request, _form_errors(form), status=400)
    data = form.cleaned_data
    result, error = _run(
        request,
        lambda: workflow_approve(
            workflow_id=pk,
            user=request.user,
            subject=data["subject"] if "subject" in request.POST else None,
            body=data["body"] if "body" in request.POST else None,
            version=data["version"],
        ),
    )
    if not error and _from_inbox_row(request):
        kind = "approved" if result.ok else "unchanged"
        return _inbox_row(request, pk, kind=kind, text=action_text(result.message))
    return error or _after_result(request, pk, result)


@staff_required
@require_POST
def workflow_reject_view(request: HttpRequest, pk: int) -> HttpResponse:
    form = RejectForm(request.POST)
    if not form.is_valid():
        if "reason" in form.errors:
            return message_response(request, "Say why the draft is rejected.", status=400)
        return message_response(request, _form_errors(form), status=400)
    result, error = _run(
        request,
        lambda: workflow_reject(
            workflow_id=pk,
            user=request.user,
            reason=form.cleaned_data["reason"],
            version=form.cleaned_data["version"],
        ),
    )
    if not error and _from_inbox_row(request):
        kind = "rejected" if result.ok else "unchanged"
        return _inbox_row(request, pk, kind=kind, text=action_text(result.message))
    return error or _after_result(request, pk, result)


@staff_required
@require_POST
def draft_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    form = DraftForm(request.POST)
    if not form.is_valid():
        return message_response(request, _form_errors(form), status=400)
    _draft, error = _run(
        request,
        lambda: draft_edit(
            workflow_id=pk,
            user=request.user,
            subject=form.cleaned_data["subject"],
            body=form.cleaned_data["body"],
            version=form.cleaned_data["version"],
        ),
    )
    if not error and _from_inbox_row(request):
        return _inbox_row(request, pk)
    return error or _after_action(request, pk, "success", "Draft saved.")


@staff_required
@require_POST
def workflow_replay_view(request: HttpRequest, pk: int) -> HttpResponse:
    form = ReplayForm(request.POST)
    form.is_valid()
    data = form.cleaned_data
    result, error = _run(
        request,
        lambda: workflows_replay(
            workflow_ids=[pk],
            user=request.user,
            shadow=bool(data.get("shadow")),
            reason=data.get("reason") or "dashboard: replay",
        ),
    )
    if error:
        return error
    text = replay_text(result, shadow_requested=bool(data.get("shadow")))
    if result.refused:
        return message_response(request, text, status=409)
    if not result.created:
        raise Http404("No such workflow.")
    return _after_action(request, pk, "success", text)


@staff_required
@require_POST
def resolve_send_view(request: HttpRequest, pk: int) -> HttpResponse:
    form = ResolveSendForm(request.POST)
    if not form.is_valid():
        # Say what is missing, not both (a note left empty after choosing "sent" was told to
        # choose sent or not sent too).
        missing = [
            text
            for field, text in (
                ("sent", "choose whether it was sent or not"),
                ("note", "note how you checked (e.g. found in the ESP log)"),
            )
            if field in form.errors
        ]
        return message_response(
            request, f"To record the outcome, {' and '.join(missing)}.", status=400
        )
    result, error = _run(
        request,
        lambda: resolve_unknown_send(
            workflow_id=pk,
            user=request.user,
            sent=form.cleaned_data["sent"],
            note=form.cleaned_data["note"],
        ),
    )
    return error or _after_result(request, pk, result)


# --- Inbox --------------------------------------------------------------------------------------


def _inbox_context(request: HttpRequest) -> dict[str, Any]:
    rows = list(selectors.inbox_queryset()[: INBOX_LIMIT + 1])
    _prepare_inbox_rows(rows)
    return {
        "rows": rows[:INBOX_LIMIT],
        "more": len(rows) > INBOX_LIMIT,
        "target": settings.SPEED_TO_LEAD_TARGET_MINUTES,
        "nav": "inbox",
        **_inbox_permissions(request),
    }


def _inbox_permissions(request: HttpRequest) -> dict[str, bool]:
    """Asked once per page, not seven times per row (``perms.…`` in the row template)."""
    return {
        "can_approve": request.user.has_perm("workflows.approve_workflow"),
        "can_reject": request.user.has_perm("workflows.reject_workflow"),
    }


#: The links of an inbox row (its template shows some twice): name in the row -> URL name.
_INBOX_ROW_URLS = {
    "detail": "workflow_detail",
    "approve": "workflow_approve",
    "reject": "workflow_reject",
    "edit": "draft_edit",
}


def _prepare_inbox_rows(rows: list[Workflow]) -> None:
    """The lead's age, and what the row template shows several times: its links, and the id
    and draft version as text. Rendering 100 rows was most of the inbox's time; nine
    ``{% url %}`` a row and the localizing of each integer printed (twenty a row) cost the
    most (docs/performance.md, third pass)."""
    target = settings.SPEED_TO_LEAD_TARGET_MINUTES
    now = timezone.now()
    for w in rows:
        since = w.submission.submitted_at or w.submission.received_at
        w.lead_age = now - since
        w.overdue = w.lead_age.total_seconds() > target * 60
        w.id_text = str(w.pk)
        draft = getattr(w, "draft", None)
        w.version_text = str(draft.version) if draft else ""
        w.urls = {
            name: reverse(f"dashboard:{view}", args=[w.pk])
            for name, view in _INBOX_ROW_URLS.items()
        }


@staff_required
@require_GET
@vary_on_headers("HX-Request")
def inbox(request: HttpRequest) -> HttpResponse:
    context = _inbox_context(request)
    if request.htmx:
        return render(request, "dashboard/_inbox_table.html", context)
    return render(request, "dashboard/inbox.html", context)


@staff_required
@require_POST
def inbox_bulk(request: HttpRequest) -> HttpResponse:
    """Approve or reject the selected drafts, one service call per id, reporting each outcome."""
    form = BulkDecisionForm(request.POST)
    if not form.is_valid():
        return message_response(request, _form_errors(form), status=400)
    action, reason = form.cleaned_data["action"], form.cleaned_data["reason"]
    try:
        outcomes = workflows_decide(
            workflow_ids=form.cleaned_data["ids"],
            user=request.user,
            approve=action == "approve",
            reason=reason,
            versions=versions_from(request.POST),
        )
    except PermissionDenied as exc:
        return message_response(request, f"Not allowed: {exc}", status=403)
    rows = [{**asdict(outcome), "message": action_text(outcome.message)} for outcome in outcomes]
    context = {**_inbox_context(request), "outcomes": rows, "action": action}
    template = "dashboard/_inbox_body.html" if request.htmx else "dashboard/inbox.html"
    return render(request, template, context)


# --- Preferences --------------------------------------------------------------------------------


@staff_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    """The operator's own settings: the time zone every page (and the admin) shows times in."""
    prefs = OperatorPreferences.objects.filter(user=request.user).first()
    form = PreferencesForm(request.POST or None, instance=prefs)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        saved.user = request.user
        saved.save()
        timezones.remember(request, saved.time_zone or settings.TIME_ZONE)
        messages.success(
            request, f"Times are now shown in {saved.time_zone or settings.TIME_ZONE}."
        )
        return redirect("dashboard:preferences")
    context = {
        "form": form,
        "zones": time_zone_names(),
        "default_zone": settings.TIME_ZONE,
        "nav": "preferences",
    }
    return render(
        request, "dashboard/preferences.html", context, status=400 if form.errors else 200
    )
