"""The detail page's AI draft actions (issue #17): "Regenerate" and "Use template" (htmx).

Kept apart from views.py; they reuse its access check, error mapping and refreshed-body reply.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from dashboard.views import _after_action, _run, staff_required
from outreach.llm.actions import draft_regenerate, draft_use_template


@staff_required
@require_POST
def draft_regenerate_view(request: HttpRequest, pk: int) -> HttpResponse:
    draft, error = _run(request, lambda: draft_regenerate(workflow_id=pk, user=request.user))
    if error:
        return error
    if draft.drafter == "llm":
        return _after_action(request, pk, "success", "The model wrote a new draft.")
    return _after_action(
        request,
        pk,
        "warning",
        f"The model's answer was not used ({draft.ai_outcome}); the template draft stands.",
    )


@staff_required
@require_POST
def draft_use_template_view(request: HttpRequest, pk: int) -> HttpResponse:
    _draft, error = _run(request, lambda: draft_use_template(workflow_id=pk, user=request.user))
    return error or _after_action(request, pk, "success", "Switched to the template draft.")
