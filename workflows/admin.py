from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from config.admin_display import ReadOnlyAdmin, SafeFilters, pretty_json
from dashboard.forms import versions_from
from outreach.services import workflows_decide
from workflows.hubspot.names import NameKind, display_name
from workflows.messages import decision_text, replay_text
from workflows.models import AuditEvent, Status, Workflow, WorkflowError
from workflows.services import workflows_replay


class RejectForm(forms.Form):
    reason = forms.CharField(
        max_length=2000, widget=forms.TextInput(attrs={"size": 60}), help_text="Required."
    )


class WorkflowErrorInline(admin.TabularInline):
    model = WorkflowError
    extra = 0
    can_delete = False
    fields = ("created_at", "step", "attempt", "exception_type", "message", "retryable")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Workflow)
class WorkflowAdmin(SafeFilters, ReadOnlyAdmin, admin.ModelAdmin):
    list_display = (
        "id",
        "submission",
        "status",
        "current_step",
        "attempts",
        "trigger",
        "owner",
        "created_at",
    )
    list_filter = ("status", "trigger", "current_step", "shadow")
    search_fields = ("submission__email", "submission__company", "contact_id", "task_id")
    date_hierarchy = "created_at"
    list_select_related = ("submission",)
    show_full_result_count = False
    raw_id_fields = ("submission", "replay_of")
    exclude = ("contact", "step_log", "last_error")
    readonly_fields = [
        f.name for f in Workflow._meta.fields if f.name not in ("contact", "step_log", "last_error")
    ] + ["current_error", "contact_facts", "steps"]
    inlines = [WorkflowErrorInline]
    actions = ["approve_selected", "reject_selected", "replay_selected"]

    @admin.display(description="owner", ordering="owner_id")
    def owner(self, obj: Workflow) -> str:
        """HubSpot's owner name (the id stays in the detail view)."""
        return display_name(NameKind.OWNER, obj.owner_id) or obj.owner_id or "—"

    # The actions call the same services as the dashboard; one message per workflow says
    # whether it was decided here or had already been decided (a lost race).
    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm("workflows.approve_workflow")

    def has_reject_permission(self, request) -> bool:
        return request.user.has_perm("workflows.reject_workflow")

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("workflows.replay_workflow")

    def _decide_each(self, request, queryset, *, approve: bool, reason: str = "") -> None:
        ids = queryset.order_by("created_at").values_list("pk", flat=True)
        try:
            outcomes = workflows_decide(
                workflow_ids=ids,
                user=request.user,
                approve=approve,
                reason=reason,
                versions=versions_from(request.POST),
            )
        except PermissionDenied as exc:
            self.message_user(request, f"Not allowed: {exc}", messages.ERROR)
            return
        for outcome in outcomes:
            level = messages.SUCCESS if outcome.ok else messages.WARNING
            self.message_user(request, decision_text(outcome), level)

    def _confirmation(self, request, queryset, *, title: str, template: str, form=None):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "form": form,
            "workflows": queryset.select_related("submission", "draft__edited_by"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, template, context)

    @admin.action(description="Approve selected drafts as drafted…", permissions=["approve"])
    def approve_selected(self, request, queryset) -> TemplateResponse | None:
        """Shows each draft's text first; approves the versions shown (an edit made meanwhile
        refuses that row: approve what you read)."""
        if "apply" in request.POST:
            self._decide_each(request, queryset, approve=True)
            return None
        return self._confirmation(
            request, queryset, title="Approve drafts", template="dashboard/admin_approve.html"
        )

    @admin.action(description="Reject selected drafts…", permissions=["reject"])
    def reject_selected(self, request, queryset) -> TemplateResponse | None:
        """Asks for a reason on an intermediate page, then rejects each workflow."""
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            self._decide_each(request, queryset, approve=False, reason=reason)
            return None
        return self._confirmation(
            request,
            queryset,
            title="Reject drafts",
            template="dashboard/admin_reject.html",
            form=form,
        )

    @admin.action(description="Replay selected workflows", permissions=["replay"])
    def replay_selected(self, request, queryset) -> None:
        try:
            result = workflows_replay(
                workflow_ids=list(queryset.values_list("pk", flat=True)),
                user=request.user,
                reason="admin: replay",
            )
        except PermissionDenied as exc:
            self.message_user(request, f"Not allowed: {exc}", messages.ERROR)
            return
        level = messages.SUCCESS if result.created else messages.WARNING
        self.message_user(request, replay_text(result), level)  # the dashboard's wording

    @admin.display(description="contact")
    def contact_facts(self, obj: Workflow) -> str:
        return pretty_json(obj.contact)

    @admin.display(description="step log")
    def steps(self, obj: Workflow) -> str:
        return pretty_json(obj.step_log)

    @admin.display(description="last error")
    def current_error(self, obj: Workflow) -> str:
        """The last error while it is still the workflow's story: while it waits to retry or
        has failed, or when it is the reason for the state it ended in (a duplicate). A workflow
        that succeeded after a retry shows none; its errors stay listed below."""
        if not obj.last_error:
            return "—"
        if obj.status in (Status.PENDING, Status.RUNNING, Status.FAILED):
            return obj.last_error
        ended_because = (
            AuditEvent.objects.filter(workflow=obj, to_status=obj.status)
            .order_by("-created_at", "-pk")
            .values_list("reason", flat=True)
            .first()
        )
        return obj.last_error if ended_because == obj.last_error else "—"

    # Workflows change only through the state machine (the actions above): ReadOnlyAdmin
    # shows them with no Save and no Delete (the database refuses deletes anyway).


@admin.register(WorkflowError)
class WorkflowErrorAdmin(SafeFilters, ReadOnlyAdmin, admin.ModelAdmin):
    list_display = (
        "id",
        "workflow",
        "step",
        "attempt",
        "exception_type",
        "retryable",
        "created_at",
    )
    list_filter = ("step", "retryable", "exception_type")
    search_fields = ("message", "=workflow__id")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in WorkflowError._meta.fields]
    raw_id_fields = ("workflow",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(SafeFilters, ReadOnlyAdmin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "from_status",
        "to_status",
    )
    list_filter = ("action", "object_type", "to_status")
    search_fields = ("actor", "reason", "=object_id")
    date_hierarchy = "created_at"
    exclude = ("details",)
    readonly_fields = [f.name for f in AuditEvent._meta.fields if f.name != "details"] + [
        "details_json"
    ]

    @admin.display(description="details")
    def details_json(self, obj: AuditEvent) -> str:
        return pretty_json(obj.details)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
