from django.contrib import admin

from outreach.models import EmailDraft


@admin.register(EmailDraft)
class EmailDraftAdmin(admin.ModelAdmin):
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
    list_filter = ("decision", "gate_action", "template")
    search_fields = ("recipient", "subject", "=workflow__id")
    date_hierarchy = "created_at"
    raw_id_fields = ("workflow",)
    readonly_fields = [
        f.name for f in EmailDraft._meta.fields if f.name not in ("subject", "body", "body_html")
    ]

    def has_add_permission(self, request) -> bool:
        return False
