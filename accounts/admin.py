from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import AdminAlert, OutboundMessage, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "email", "role", "preferred_language", "is_active", "is_staff", "last_login"]
    list_filter = ["role", "is_active", "is_staff", "preferred_language"]
    fieldsets = (*BaseUserAdmin.fieldsets, ("EyeBridge", {"fields": ("role", "preferred_language")}))
    add_fieldsets = (*BaseUserAdmin.add_fieldsets, ("EyeBridge", {"fields": ("role", "preferred_language")}))


@admin.register(OutboundMessage)
class OutboundMessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "to", "topic", "status", "backend"]
    list_filter = ["status", "topic", "backend"]
    search_fields = ["to", "body"]
    readonly_fields = ["to", "body", "backend", "status", "topic", "dedupe_key", "created_at"]


@admin.register(AdminAlert)
class AdminAlertAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "object_ref", "resolved_at"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["object_ref", "message"]
