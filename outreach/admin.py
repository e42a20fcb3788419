from django.contrib import admin

from config.admin_display import ReadOnlyAdmin, SafeFilters
from outreach.models import EmailDraft


@admin.register(EmailDraft)
class EmailDraftAdmin(SafeFilters, ReadOnlyAdmin, admin.ModelAdmin):
    list_display = (
        "id",
        "workflow",
        "recipient",
        "subject",
        "decision",
        "gate_action",
        "sent_at",
        "created_at",
    )
    list_filter = ("decision", "gate_action", "template", "drafter", "ai_outcome")
    search_fields = ("recipient", "subject", "=workflow__id")
    date_hierarchy = "created_at"
    raw_id_fields = ("workflow",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # Edits go through outreach.services.draft_edit (the dashboard): only while awaiting
        # approval, with the original kept and an audit row. A plain admin form would bypass all.
        return False
