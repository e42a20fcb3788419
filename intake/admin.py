from django.contrib import admin

from config.admin_display import ReadOnlyAdmin, SafeFilters, pretty_json
from intake.models import FormSubmission, Lead, LeadKey, NonLeadDelivery


@admin.register(FormSubmission)
class FormSubmissionAdmin(SafeFilters, ReadOnlyAdmin, admin.ModelAdmin):
    """Stored submissions, read-only: they arrive only through the signed webhook."""

    list_display = (
        "id",
        "email",
        "first_name",
        "last_name",
        "company",
        "form_name",
        "shape",
        "received_at",
    )
    list_filter = ("shape", "signature_version", "form_id")
    search_fields = (
        "email",
        "first_name",
        "last_name",
        "company",
        "object_id",
        "=dedupe_key",
        "=lead__id",
    )
    date_hierarchy = "received_at"
    show_full_result_count = False
    readonly_fields = [f.name for f in FormSubmission._meta.fields if f.name != "raw_payload"] + [
        "payload"
    ]
    exclude = ("raw_payload",)

    @admin.display(description="form", ordering="form_id")
    def form_name(self, obj: FormSubmission) -> str:
        """HubSpot's form name (the GUID stays in the detail view)."""
        from workflows.hubspot.names import NameKind, display_name

        return display_name(NameKind.FORM, obj.form_id) or obj.form_id or "—"

    @admin.display(description="raw payload")
    def payload(self, obj: FormSubmission) -> str:
        return pretty_json(obj.raw_payload)


@admin.register(NonLeadDelivery)
class NonLeadDeliveryAdmin(SafeFilters, ReadOnlyAdmin, admin.ModelAdmin):
    """Events that did not become leads: what they were and why (ignored, refused, applied)."""

    list_display = ("id", "outcome", "event_type", "object_id", "reason", "received_at")
    list_filter = ("outcome", "event_type", "signature_version")
    search_fields = ("event_type", "object_id", "reason", "=dedupe_key")
    date_hierarchy = "received_at"
    show_full_result_count = False
    readonly_fields = [f.name for f in NonLeadDelivery._meta.fields if f.name != "raw_payload"] + [
        "payload"
    ]
    exclude = ("raw_payload",)

    @admin.display(description="raw payload")
    def payload(self, obj: NonLeadDelivery) -> str:
        return pretty_json(obj.raw_payload)


class LeadKeyInline(admin.TabularInline):
    model = LeadKey
    extra = 0
    can_delete = False
    readonly_fields = ("key", "created_at")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class LeadSubmissionInline(admin.TabularInline):
    model = FormSubmission
    fk_name = "lead"
    extra = 0
    can_delete = False
    fields = ("id", "shape", "signature_version", "email", "form_id", "received_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Lead)
class LeadAdmin(SafeFilters, ReadOnlyAdmin, admin.ModelAdmin):
    """One lead and every delivery that brought it (intake/identity.py)."""

    list_display = ("id", "created_at", "duplicate_of")
    search_fields = ("=id", "keys__key")
    readonly_fields = ("id", "created_at", "duplicate_of")
    inlines = (LeadKeyInline, LeadSubmissionInline)
    show_full_result_count = False
