from django.contrib import admin

from config.admin_display import pretty_json
from intake.models import FormSubmission


@admin.register(FormSubmission)
class FormSubmissionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "email",
        "first_name",
        "last_name",
        "company",
        "form",
        "shape",
        "received_at",
    )
    list_filter = ("shape", "signature_version", "form_id")
    search_fields = ("email", "first_name", "last_name", "company", "object_id", "=dedupe_key")
    date_hierarchy = "received_at"
    show_full_result_count = False
    readonly_fields = [f.name for f in FormSubmission._meta.fields if f.name != "raw_payload"] + [
        "payload"
    ]
    exclude = ("raw_payload",)

    @admin.display(description="form", ordering="form_id")
    def form(self, obj: FormSubmission) -> str:
        """HubSpot's form name (the GUID stays in the detail view)."""
        from workflows.hubspot.names import NameKind, display_name

        return display_name(NameKind.FORM, obj.form_id) or obj.form_id or "—"

    @admin.display(description="raw payload")
    def payload(self, obj: FormSubmission) -> str:
        return pretty_json(obj.raw_payload)

    def has_add_permission(self, request) -> bool:
        return False  # submissions arrive only through the signed webhook

    def has_change_permission(self, request, obj=None) -> bool:
        return False
