from django.contrib import admin

from dashboard.models import DashboardAccess


@admin.register(DashboardAccess)
class DashboardAccessAdmin(admin.ModelAdmin):
    list_display = ("user", "regions", "note", "created_at")
    search_fields = ("user__username", "note")
    raw_id_fields = ("user",)
