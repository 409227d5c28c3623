from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from screening.models import (
    EyeResult,
    Patient,
    Screening,
    ScreeningImage,
    Site,
    SiteMembership,
    TriageRule,
)


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["name", "name_en", "region", "latitude", "longitude"]
    list_filter = ["region"]
    search_fields = ["name", "name_en", "address"]


@admin.register(SiteMembership)
class SiteMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "site"]
    list_filter = ["site"]
    search_fields = ["user__username"]
    autocomplete_fields = ["site"]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = [
        "pseudonym",
        "name",
        "birth_date",
        "sex",
        "site",
        "has_diabetes",
        "has_hypertension",
        "created_at",
    ]
    list_filter = ["site", "sex", "has_diabetes", "has_hypertension", "family_history_glaucoma"]
    search_fields = ["pseudonym", "name", "phone"]
    readonly_fields = [
        "pseudonym",
        "created_at",
        "created_by",
        "consent_recorded_by",
        "consent_recorded_at",
    ]


class ScreeningImageInline(admin.TabularInline):
    model = ScreeningImage
    extra = 0
    can_delete = False
    fields = ("eye", "preview", "gradable", "quality", "width", "height", "sha256")
    readonly_fields = fields

    @admin.display(description="photo")
    def preview(self, obj: ScreeningImage) -> str:
        url = reverse("screening:image_file", args=[obj.id])
        return format_html('<img src="{}" style="max-width:220px" alt="fundus">', url)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class EyeResultInline(admin.TabularInline):
    model = EyeResult
    extra = 0
    can_delete = False
    fields = ("eye", "heatmap", "top_class", "findings", "probabilities", "model_version")
    readonly_fields = fields

    @admin.display(description="heatmap")
    def heatmap(self, obj: EyeResult) -> str:
        if not obj.heatmap_path:
            return "-"
        url = reverse("screening:heatmap_file", args=[obj.id])
        return format_html('<img src="{}" style="max-width:220px" alt="heatmap">', url)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Screening)
class ScreeningAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "patient",
        "site",
        "status",
        "triage",
        "attempts",
        "created_at",
        "completed_at",
    ]
    list_filter = ["status", "triage", "site"]
    search_fields = ["patient__pseudonym", "patient__name"]
    date_hierarchy = "created_at"
    inlines = [ScreeningImageInline, EyeResultInline]
    # AI outputs and pipeline state are the record of what happened: read-only.
    readonly_fields = [
        "patient",
        "site",
        "health_worker",
        "status",
        "attempts",
        "queued_at",
        "started_at",
        "completed_at",
        "triage",
        "reasons",
        "findings",
        "model_version",
        "error",
        "created_at",
    ]


@admin.register(TriageRule)
class TriageRuleAdmin(admin.ModelAdmin):
    list_display = [
        "class_code",
        "risk_factor",
        "threshold",
        "urgent_threshold",
        "referable",
        "updated_at",
    ]
    list_filter = ["class_code", "risk_factor"]
