"""The operator's say over AI drafts: "Regenerate" asks the model again, "Use template" switches
back to the template draft. Both only while the workflow awaits approval, both need the
``approve_workflow`` permission, both replace the drafted text (edits included) and are audited
(``draft.regenerated``, ``draft.template_used``) with the outcome, never the text.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from outreach.drafting import DraftContent, TemplateDrafter
from outreach.models import EmailDraft
from outreach.services import (
    APPROVE_PERMISSION,
    ActionRefused,
    _already_message,
    _draft_context,
    _require,
    apply_content,
)
from workflows import audit
from workflows.models import Status, Workflow

#: ai_outcome of a draft an operator switched back to the template.
OPERATOR_TEMPLATE = "operator_template"


def draft_regenerate(*, workflow_id: int, user: AbstractBaseUser) -> EmailDraft:
    """Ask the model again; the answer (or, failing the guards, the template) replaces the
    draft. The model is called outside any transaction, for at most LLM_TIMEOUT_SECONDS."""
    from outreach.llm.drafter import LlmDrafter

    _require(user, APPROVE_PERMISSION)
    if settings.OUTREACH_DRAFTER != "llm":
        raise ActionRefused("AI drafting is off (OUTREACH_DRAFTER=template): nothing to ask.")
    workflow = _waiting(workflow_id)
    content = LlmDrafter().draft(_draft_context(workflow))
    return _replace(workflow_id, content, user=user, action="draft.regenerated")


def draft_use_template(*, workflow_id: int, user: AbstractBaseUser) -> EmailDraft:
    """Replace the draft by the template draft; what the model was asked stays on record."""
    _require(user, APPROVE_PERMISSION)
    workflow = _waiting(workflow_id)
    content = TemplateDrafter().draft(_draft_context(workflow))
    return _replace(workflow_id, content, user=user, action="draft.template_used")


def _waiting(workflow_id: int) -> Workflow:
    workflow = Workflow.objects.select_related("submission").get(pk=workflow_id)
    if workflow.status != Status.AWAITING_APPROVAL:
        raise ActionRefused(_already_message(workflow_id, workflow.status))
    return workflow


def _replace(
    workflow_id: int, content: DraftContent, *, user: AbstractBaseUser, action: str
) -> EmailDraft:
    with transaction.atomic():
        draft = EmailDraft.objects.select_for_update().get(workflow_id=workflow_id)
        status = Workflow.objects.values_list("status", flat=True).get(pk=workflow_id)
        if status != Status.AWAITING_APPROVAL:
            raise ActionRefused(_already_message(workflow_id, status))
        previous = draft.drafter
        apply_content(draft, content, drafter=TemplateDrafter.name)
        draft.edited_by = draft.edited_at = None
        if not content.ai:
            draft.ai_outcome = OPERATOR_TEMPLATE
            draft.ai_detail = f"{user.get_username()} chose the template draft."
        # New text: an approval of the text read before it is stale (issue #13).
        draft.version += 1
        draft.save()
        failed = [g["rule"] for g in draft.ai_guards if not g.get("passed")]
        audit.record(
            action=action,
            object_type="email_draft",
            object_id=draft.pk,
            workflow_id=workflow_id,
            user=user,
            details={
                "from_drafter": previous,
                "drafter": draft.drafter,
                "ai_outcome": draft.ai_outcome,
                "failed_rules": failed if content.ai else [],
                "prompt_tokens": draft.ai_prompt_tokens if content.ai else None,
                "completion_tokens": draft.ai_completion_tokens if content.ai else None,
            },
        )
    return draft
