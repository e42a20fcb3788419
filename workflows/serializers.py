"""API shapes: query parameters and request bodies in, rows and action results out.

Serializers only validate and render; the API views hand the validated values to a selector or
a service (``dashboard.selectors``, ``workflows.services``, ``outreach.services``).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from dashboard.selectors import WorkflowFilters
from intake.models import FormSubmission
from outreach.models import EmailDraft
from workflows.models import Status, Trigger, Workflow, WorkflowError

BULK_REPLAY_MAX = 1000

# --- Query parameters and request bodies -----------------------------------------------------


class WorkflowFilterSerializer(serializers.Serializer):
    """The list's filters; the same meaning as the dashboard's filter bar."""

    status = serializers.ChoiceField(choices=Status.choices, required=False)
    trigger = serializers.ChoiceField(choices=Trigger.choices, required=False)
    form_id = serializers.CharField(required=False, max_length=128)
    email = serializers.CharField(
        required=False, max_length=254, help_text="Exact lead email (case-insensitive)."
    )
    q = serializers.CharField(
        required=False, max_length=200, help_text="Search in email, first/last name and company."
    )
    since = serializers.DateField(required=False, help_text="Created on or after this day.")
    until = serializers.DateField(required=False, help_text="Created on or before this day.")

    def validate(self, attrs: dict) -> dict:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and since > until:
            raise serializers.ValidationError({"until": "Must not be before 'since'."})
        return attrs

    def to_filters(self) -> WorkflowFilters:
        data = self.validated_data
        return WorkflowFilters(
            status=data.get("status", ""),
            q=data.get("q", ""),
            form_id=data.get("form_id", ""),
            date_from=data.get("since"),
            date_to=data.get("until"),
            email=data.get("email", ""),
            trigger=data.get("trigger", ""),
        )


class BulkReplayRequestSerializer(WorkflowFilterSerializer):
    """Replay every *failed* workflow matching the filters, oldest first, at most ``limit``."""

    status = None  # forced to failed
    limit = serializers.IntegerField(min_value=1, max_value=BULK_REPLAY_MAX, default=100)
    shadow = serializers.BooleanField(default=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


_VERSION_HELP = (
    "The draft's `version` as you read it (from GET /api/workflows/{id}/). If the draft was "
    "edited since, the decision is refused with 409: review it again."
)


class ApproveRequestSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1, help_text=_VERSION_HELP)
    subject = serializers.CharField(
        required=False, max_length=300, help_text="Replace the draft's subject before approving."
    )
    body = serializers.CharField(
        required=False,
        trim_whitespace=False,
        help_text="Replace the draft's body before approving.",
    )


class RejectRequestSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1, help_text=_VERSION_HELP)
    reason = serializers.CharField(max_length=2000, help_text="Why the draft is rejected.")


class ReplayRequestSerializer(serializers.Serializer):
    shadow = serializers.BooleanField(
        default=False,
        help_text="Look up and draft only: no CRM task, never sent. Forced when an earlier run "
        "of the same submission sent (or may have sent) an email.",
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


# --- Responses -----------------------------------------------------------------------------------


class SubmissionSummarySerializer(serializers.ModelSerializer):
    full_name = serializers.CharField(read_only=True)

    class Meta:
        model = FormSubmission
        fields = [
            "id",
            "email",
            "email_error",
            "first_name",
            "last_name",
            "full_name",
            "company",
            "form_id",
            "received_at",
        ]


class DraftSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = EmailDraft
        fields = ["recipient", "subject", "decision", "gate_action", "version"]


class DraftSerializer(serializers.ModelSerializer):
    was_edited = serializers.BooleanField(read_only=True)
    approver = serializers.CharField(source="approver.username", read_only=True, allow_null=True)

    class Meta:
        model = EmailDraft
        fields = [
            "id",
            "recipient",
            "subject",
            "body",
            "original_subject",
            "original_body",
            "was_edited",
            "version",
            "edited_at",
            "template",
            "drafter",
            "decision",
            "decision_reason",
            "approver",
            "decided_at",
            "gate_action",
            "gate_reason",
            "send_attempts",
            "sent_at",
            "provider_message_id",
            "created_at",
        ]


class WorkflowErrorSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkflowError
        fields = [
            "step",
            "attempt",
            "exception_type",
            "message",
            "traceback",
            "retryable",
            "retry_in_seconds",
            "created_at",
        ]


_WORKFLOW_FIELDS = [
    "id",
    "status",
    "trigger",
    "shadow",
    "replay_of",
    "superseded_by",
    "current_step",
    "attempts",
    "created_at",
    "started_at",
    "completed_at",
]


class WorkflowListSerializer(serializers.ModelSerializer):
    """One row of the list: only columns the list query loads (no per-row queries)."""

    submission = SubmissionSummarySerializer(read_only=True)
    draft = serializers.SerializerMethodField()

    class Meta:
        model = Workflow
        fields = [*_WORKFLOW_FIELDS, "submission", "draft"]

    @extend_schema_field(DraftSummarySerializer(allow_null=True))
    def get_draft(self, workflow: Workflow) -> dict | None:
        draft = _draft_or_none(workflow)
        return DraftSummarySerializer(draft).data if draft else None


class WorkflowDetailSerializer(serializers.ModelSerializer):
    submission = SubmissionSummarySerializer(read_only=True)
    draft = serializers.SerializerMethodField()
    errors = WorkflowErrorSerializer(many=True, read_only=True)
    step_log = serializers.DictField(read_only=True)
    contact = serializers.DictField(read_only=True)

    class Meta:
        model = Workflow
        fields = [
            *_WORKFLOW_FIELDS,
            "contact_id",
            "owner_id",
            "task_id",
            "contact",
            "last_error",
            "step_log",
            "updated_at",
            "submission",
            "draft",
            "errors",
        ]

    @extend_schema_field(DraftSerializer(allow_null=True))
    def get_draft(self, workflow: Workflow) -> dict | None:
        draft = _draft_or_none(workflow)
        return DraftSerializer(draft).data if draft else None


def _draft_or_none(workflow: Workflow) -> EmailDraft | None:
    try:
        return workflow.draft
    except EmailDraft.DoesNotExist:
        return None


class RunSerializer(serializers.ModelSerializer):
    class Meta:
        model = Workflow
        fields = ["id", "status", "trigger", "shadow", "replay_of", "created_at"]


class SubmissionSerializer(serializers.ModelSerializer):
    raw_payload = serializers.JSONField(read_only=True, help_text="The body item as received.")
    full_name = serializers.CharField(read_only=True)
    workflows = RunSerializer(many=True, read_only=True)

    class Meta:
        model = FormSubmission
        fields = [
            "id",
            "shape",
            "signature_version",
            "email",
            "email_error",
            "first_name",
            "last_name",
            "full_name",
            "company",
            "phone",
            "message",
            "form_id",
            "page_uri",
            "portal_id",
            "object_id",
            "event_type",
            "submitted_at",
            "received_at",
            "dedupe_key",
            "raw_payload",
            "workflows",
        ]


class ActionResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices, allow_null=True)


class ReplayRefusalSerializer(serializers.Serializer):
    workflow_id = serializers.IntegerField()
    reason = serializers.CharField(help_text='Why it was not replayed ("already replayed as #N").')


class ReplayResultSerializer(serializers.Serializer):
    created = serializers.ListField(
        child=serializers.IntegerField(), help_text="Ids of the new workflows (trigger=replay)."
    )
    shadow = serializers.ListField(
        child=serializers.IntegerField(), help_text="Which of them run in shadow mode."
    )
    refused = ReplayRefusalSerializer(
        many=True, help_text="Workflows not replayed: at most one live run per submission."
    )


class BulkReplayResultSerializer(ReplayResultSerializer):
    matched = serializers.IntegerField(help_text="Failed workflows selected (at most limit).")
    more = serializers.BooleanField(help_text="More failed workflows match than the limit.")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.JSONField(help_text="A message, or field names mapped to messages.")


class StatsSerializer(serializers.Serializer):
    counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="Workflows per status (every status listed)."
    )
    total = serializers.IntegerField()
    oldest_pending_age_seconds = serializers.FloatField(allow_null=True)
    awaiting_approval = serializers.IntegerField()
    oldest_awaiting_approval_age_seconds = serializers.FloatField(allow_null=True)
    median_time_to_draft_seconds = serializers.FloatField(
        allow_null=True,
        help_text="Created → awaiting approval: median of the newest 2,000 in the last 7 days.",
    )
    median_time_to_approval_seconds = serializers.FloatField(
        allow_null=True,
        help_text="Held for approval → approved: median of the newest 2,000 in the last 7 days.",
    )
