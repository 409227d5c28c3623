from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin_json import ModelAdmin
from dashboard.models import DashboardAccess


@admin.register(DashboardAccess)
class DashboardAccessAdmin(ModelAdmin):
    list_display = ("user", "region_names", "note", "created_at")
    search_fields = ("user__username", "note")
    raw_id_fields = ("user",)

    @admin.display(description=_("regions"))
    def region_names(self, obj: DashboardAccess) -> str:
        if isinstance(obj.regions, list) and obj.regions:
            return ", ".join(str(r) for r in obj.regions)
        return str(_("all regions"))
