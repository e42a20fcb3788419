from __future__ import annotations

from django.conf import settings
from django.db import models


class Decision(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class GateAction(models.TextChoices):
    SEND = "send", "Send"
    HOLD = "hold", "Hold for approval"
    BLOCK = "block", "Blocked"


class EmailDraft(models.Model):
    """The email a workflow proposes. One per workflow; the drafted text is kept beside edits."""

    workflow = models.OneToOneField(
        "workflows.Workflow", on_delete=models.CASCADE, related_name="draft"
    )
    recipient = models.CharField(max_length=254, blank=True, default="")
    subject = models.CharField(max_length=300)
    body = models.TextField()
    body_html = models.TextField(blank=True, default="")
    template = models.CharField(max_length=200)
    drafter = models.CharField(max_length=50, default="template")
    original_subject = models.CharField(max_length=300)
    original_body = models.TextField()
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    edited_at = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(max_length=10, choices=Decision.choices, default=Decision.PENDING)
    decision_reason = models.TextField(blank=True, default="")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(
        default=1,
        db_default=1,  # rows inserted by SQL (bench seeding, data fixes) start at 1 too
        help_text="Bumped by every edit; a decision names the version the operator read.",
    )
    gate_action = models.CharField(max_length=5, choices=GateAction.choices, blank=True, default="")
    gate_reason = models.TextField(blank=True, default="")
    idempotency_key = models.CharField(max_length=64, unique=True)
    send_attempts = models.PositiveIntegerField(
        default=0, help_text="Sends claimed (committed before the provider is called)."
    )
    send_failures = models.PositiveIntegerField(
        default=0,
        help_text="Attempts the provider definitely refused. Attempts beyond these have an "
        "unknown outcome and are never retried automatically.",
    )
    send_claimed_at = models.DateTimeField(null=True, blank=True)
    last_send_error = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True, default="")
    # --- AI drafts (issue #17; outreach/llm/). Empty for drafts no model was asked about.
    language = models.CharField(
        max_length=16, blank=True, default="", help_text="The lead's language as detected."
    )
    ai_model = models.CharField(max_length=200, blank=True, default="")
    ai_prompt_file = models.CharField(max_length=300, blank=True, default="")
    ai_prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    ai_completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    ai_guards = models.JSONField(
        default=list, blank=True, help_text="[{rule, passed, detail}] for the model's answer."
    )
    ai_outcome = models.CharField(
        max_length=20,
        blank=True,
        default="",
        help_text="kept, or why the template draft was used (guard_failed, timeout, …).",
    )
    ai_detail = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "email_drafts"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(decision__in=Decision.values), name="draft_decision_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Draft for workflow #{self.workflow_id} to {self.recipient or '(none)'}"

    @property
    def was_edited(self) -> bool:
        return (self.subject, self.body) != (self.original_subject, self.original_body)


class RecipientSend(models.Model):
    """The last send claimed to one (normalised) recipient: the recipient cooldown's lock.

    One row per address; a send claim locks it (``SELECT … FOR UPDATE``) in the transaction
    that claims the send, so two sends to one address serialise here whatever their path.
    """

    recipient = models.CharField(max_length=254, primary_key=True)
    last_sent_at = models.DateTimeField()
    workflow = models.ForeignKey(
        "workflows.Workflow", null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "recipient_sends"

    def __str__(self) -> str:
        return f"{self.recipient} at {self.last_sent_at:%Y-%m-%d %H:%M}"


class LlmTokenUsage(models.Model):
    """Tokens spent on the model per UTC day, shared by every process (LLM_DAILY_TOKEN_BUDGET)."""

    day = models.DateField(unique=True)
    tokens = models.BigIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "llm_token_usage"

    def __str__(self) -> str:
        return f"{self.day}: {self.tokens} tokens"
