"""API tokens in the admin: prefix, owner, dates. Never the token (knox does not keep it).

Only the row's URL carries knox's primary key, the SHA-512 digest, which cannot be used to
authenticate.

Tokens are created with ``manage.py create_api_token`` (shown once); deleting a row here
revokes the token at once.
"""

from django.contrib import admin
from knox.models import AuthToken

from config.admin_display import SafeFilters
from dashboard.models import ApiToken

admin.site.unregister(AuthToken)


@admin.register(ApiToken)
class ApiTokenAdmin(SafeFilters, admin.ModelAdmin):
    list_display = ("prefix", "user", "created", "expiry")
    list_select_related = ("user",)
    search_fields = ("token_key", "user__username")
    fields = ("prefix", "user", "created", "expiry")
    readonly_fields = fields
    ordering = ("-created",)

    @admin.display(description="token prefix", ordering="token_key")
    def prefix(self, obj: ApiToken) -> str:
        return f"{obj.token_key}…"

    def has_add_permission(self, request) -> bool:
        return False  # `manage.py create_api_token` shows the token once

    def has_change_permission(self, request, obj=None) -> bool:
        return False
