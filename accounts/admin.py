from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import StreamingHttpResponse
from django.utils.translation import gettext_lazy as _

from accounts.admin_json import ModelAdmin
from accounts.audit_export import csv_rows
from accounts.models import AdminAlert, AuditEvent, OutboundMessage, User
from accounts.selectors import audit_events_with_ids


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = [
        "username",
        "email",
        "role",
        "preferred_language",
        "is_active",
        "is_staff",
        "last_login",
    ]
    list_filter = ["role", "is_active", "is_staff", "preferred_language"]
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("EyeBridge", {"fields": ("role", "preferred_language")}),
    )
    add_fieldsets = (
        *BaseUserAdmin.add_fieldsets,
        ("EyeBridge", {"fields": ("role", "preferred_language")}),
    )


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ModelAdmin):
    list_display = ["created_at", "to", "topic", "status", "backend"]
    list_filter = ["status", "topic", "backend"]
    search_fields = ["to", "body"]
    readonly_fields = ["to", "body", "backend", "status", "topic", "dedupe_key", "created_at"]


@admin.register(AdminAlert)
class AdminAlertAdmin(ModelAdmin):
    list_display = ["created_at", "kind", "object_ref", "resolved_at"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["object_ref", "message"]


@admin.register(AuditEvent)
class AuditEventAdmin(ModelAdmin):
    """Read-only: filter, search and export. No add, change or delete, for anyone (the table is
    append-only; superusers included)."""

    list_display = [
        "created_at",
        "actor_type",
        "actor_username",
        "kiosk_id",
        "action",
        "object_type",
        "object_ids",
        "method",
        "path",
        "status_code",
        "ip",
    ]
    list_filter = [
        "action",
        "actor_type",
        "object_type",
        ("created_at", admin.DateFieldListFilter),
        "status_code",
    ]
    search_fields = ["actor_username", "kiosk_id", "path", "url_name", "object_ids", "ip"]
    date_hierarchy = "created_at"
    actions = ["export_csv"]
    list_per_page = 100
    show_full_result_count = False  # COUNT(*) over millions of rows on every page is wasted work

    def base_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Export selected events as CSV"))
    def export_csv(self, request, queryset):
        # The export is itself an access to the audit trail: the middleware's row for this request
        # records it as an export of these event ids.
        ids = list(queryset.values_list("id", flat=True)[:100_000])
        request.audit_action = "export"
        request.audit_object_ids = ids[:100]
        response = StreamingHttpResponse(
            csv_rows(audit_events_with_ids(ids=ids)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = 'attachment; filename="audit-events.csv"'
        return response
