from __future__ import annotations

from django.conf import settings
from django.db import models

from intake.models import non_null_index


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    APPROVED = "approved", "Approved"
    SENDING = "sending", "Sending"
    SEND_UNKNOWN = "send_unknown", "Send outcome unknown"
    SENT = "sent", "Sent"
    COMPLETED = "completed", "Completed (not sent)"
    REJECTED = "rejected", "Rejected"
    FAILED = "failed", "Failed"


def status_text(value: str) -> str:
    """A status as the dashboard's badge names it, with the stored value when that reads
    differently (it is what ``--status`` and the API's filter take): '“Send outcome unknown”
    (send_unknown)', '“Pending”'."""
    try:
        label = Status(value).label
    except ValueError:
        return value
    return f"“{label}”" + ("" if label.lower() == value else f" ({value})")


TERMINAL_STATUSES = frozenset({Status.SENT, Status.COMPLETED, Status.REJECTED, Status.FAILED})
#: The statuses of a run that is still live: it may yet send, or waits for a human who may.
LIVE_STATUSES = tuple(s for s in Status.values if s not in TERMINAL_STATUSES)


def live_runs(**filters) -> models.QuerySet[Workflow]:
    """The live runs (not ended, not shadow; at most one per submission, by the partial unique
    index below) among the workflows matching ``filters``. The replay service refuses a
    submission that has one; the dashboard's "Replay all failed" leaves those out."""
    return Workflow.objects.filter(status__in=LIVE_STATUSES, shadow=False, **filters)


class Trigger(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    REPLAY = "replay", "Replay"
    MANUAL = "manual", "Manual"
    RECONCILE = "reconcile", "Forms reconciliation"


class Step(models.TextChoices):
    RESOLVE_CONTACT = "resolve_contact", "Resolve contact"
    DRAFT_EMAIL = "draft_email", "Draft email"
    CREATE_CRM_TASK = "create_crm_task", "Create CRM task"
    HAND_OFF = "hand_off", "Hand off to the send gate"
    SEND_EMAIL = "send_email", "Send email"


class Workflow(models.Model):
    """One processing run of a submission. A replay is a new row; history is never rewritten."""

    submission = models.ForeignKey(
        "intake.FormSubmission", on_delete=models.CASCADE, related_name="workflows"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.WEBHOOK)
    # Almost always NULL: indexed partially (Meta.indexes), so a new run adds no entry.
    replay_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replays",
        db_index=False,
    )
    shadow = models.BooleanField(
        default=False, help_text="Shadow replay: look up and draft only; no CRM task, no send."
    )
    superseded_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The replay that took this run's place; a superseded run is not replayed again.",
        db_index=False,  # partial index in Meta.indexes, like replay_of
    )
    current_step = models.CharField(max_length=20, choices=Step.choices, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts of the current step.")
    contact_id = models.CharField(max_length=64, blank=True, default="")
    owner_id = models.CharField(max_length=64, blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    contact = models.JSONField(
        default=dict, blank=True, help_text="CRM contact facts: name, company, lifecycle stage."
    )
    step_log = models.JSONField(
        default=dict, blank=True, help_text="Per step: started_at, finished_at, attempts, note."
    )
    last_error = models.TextField(blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(
        max_length=64, blank=True, default="", help_text="Celery task id holding the lease."
    )
    enqueued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "workflows"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="workflow_status_created_idx"),
            models.Index(fields=["-created_at"], name="workflow_created_idx"),
            models.Index(
                fields=["created_at"],
                name="workflow_pending_age_idx",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["lease_expires_at"],
                name="workflow_running_lease_idx",
                condition=models.Q(status="running"),
            ),
            non_null_index("replay_of", "workflow_replay_of_idx"),
            non_null_index("superseded_by", "workflow_superseded_by_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=Status.values), name="workflow_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(trigger__in=Trigger.values), name="workflow_trigger_valid"
            ),
            # At most one live run per submission: two replays racing each other (or a replay
            # racing the run it replays) cannot both insert. Shadow runs never send: exempt.
            models.UniqueConstraint(
                fields=["submission"],
                condition=models.Q(status__in=LIVE_STATUSES, shadow=False),
                name="workflow_one_live_run_per_submission",
                violation_error_message="This submission already has a live run.",
            ),
        ]
        permissions = [
            ("approve_workflow", "Can approve drafts"),
            ("reject_workflow", "Can reject drafts"),
            ("replay_workflow", "Can replay workflows"),
        ]

    def __str__(self) -> str:
        return f"Workflow #{self.pk} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class WorkflowError(models.Model):
    """One failed attempt of one step."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="errors")
    step = models.CharField(max_length=20, choices=Step.choices)
    attempt = models.PositiveIntegerField()
    exception_type = models.CharField(max_length=200)
    message = models.TextField()
    traceback = models.TextField(blank=True, default="")
    retryable = models.BooleanField()
    retry_in_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "workflow_errors"
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.step} attempt {self.attempt}: {self.exception_type}"


class AuditEvent(models.Model):
    """Who did what when. Written in the same transaction as the change it records."""

    actor = models.CharField(max_length=150, help_text='"system" or a username.')
    # NULL for every "system" and "hubspot" row: indexed partially (Meta.indexes).
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,
    )
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True, default="")
    workflow = models.ForeignKey(
        Workflow, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    from_status = models.CharField(max_length=20, blank=True, default="")
    to_status = models.CharField(max_length=20, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "audit_events"
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["action", "-created_at"], name="audit_action_idx"),
            # The dashboard's medians: the newest transitions into a status.
            models.Index(
                fields=["to_status", "-created_at"],
                name="audit_transition_idx",
                condition=models.Q(action="workflow.transition"),
            ),
            non_null_index("actor_user", "audit_actor_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.object_type}#{self.object_id}"
