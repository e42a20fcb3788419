from django.contrib import admin

from config.admin_display import pretty_json
from workflows.models import AuditEvent, Workflow, WorkflowError


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
class WorkflowAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "submission",
        "status",
        "current_step",
        "attempts",
        "trigger",
        "owner_id",
        "created_at",
    )
    list_filter = ("status", "trigger", "current_step", "shadow")
    search_fields = ("submission__email", "submission__company", "contact_id", "task_id")
    date_hierarchy = "created_at"
    list_select_related = ("submission",)
    show_full_result_count = False
    raw_id_fields = ("submission", "replay_of")
    exclude = ("contact", "step_log")
    readonly_fields = [
        f.name for f in Workflow._meta.fields if f.name not in ("contact", "step_log")
    ] + ["contact_facts", "steps"]
    inlines = [WorkflowErrorInline]

    @admin.display(description="contact")
    def contact_facts(self, obj: Workflow) -> str:
        return pretty_json(obj.contact)

    @admin.display(description="step log")
    def steps(self, obj: Workflow) -> str:
        return pretty_json(obj.step_log)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(WorkflowError)
class WorkflowErrorAdmin(admin.ModelAdmin):
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
class AuditEventAdmin(admin.ModelAdmin):
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
