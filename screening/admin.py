from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.admin_json import ModelAdmin, TabularInline
from screening.models import (
    ConsentEvent,
    ConsentText,
    EyeResult,
    Patient,
    Screening,
    ScreeningImage,
    Site,
    SiteMembership,
    TriageRule,
)


@admin.register(Site)
class SiteAdmin(ModelAdmin):
    list_display = ["name", "name_en", "region", "latitude", "longitude"]
    list_filter = ["region"]
    search_fields = ["name", "name_en", "address"]


@admin.register(SiteMembership)
class SiteMembershipAdmin(ModelAdmin):
    list_display = ["user", "site"]
    list_filter = ["site"]
    search_fields = ["user__username"]
    autocomplete_fields = ["site"]


class ConsentEventInline(TabularInline):
    """The consent history, read-only: it changes through screening.consent, never by hand."""

    model = ConsentEvent
    extra = 0
    can_delete = False
    fields = ("recorded_at", "action", "text", "recorded_by")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ConsentText)
class ConsentTextAdmin(ModelAdmin):
    """A new wording is a new version; a version patients agreed to is never edited."""

    list_display = ["version", "effective_from"]

    def base_readonly_fields(self, request, obj=None):
        used = obj is not None and ConsentEvent.objects.filter(text=obj).exists()
        return ["version", "text_ko", "text_en", "effective_from"] if used else []

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Patient)
class PatientAdmin(ModelAdmin):
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
        "consent_text",
        "consent_withdrawn_at",
        "erased_at",
    ]
    inlines = [ConsentEventInline]


class ScreeningImageInline(TabularInline):
    model = ScreeningImage
    extra = 0
    can_delete = False
    fields = ("eye", "preview", "gradable", "quality", "width", "height", "sha256")
    readonly_fields = fields

    @admin.display(description=_("photo"))
    def preview(self, obj: ScreeningImage) -> str:
        url = reverse("screening:image_file", args=[obj.id])
        return format_html(
            '<img src="{}" style="max-width:220px" alt="{}">', url, _("Fundus photo")
        )

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class EyeResultInline(TabularInline):
    model = EyeResult
    extra = 0
    can_delete = False
    fields = ("eye", "heatmap", "top_class", "findings", "probabilities", "model_version")
    readonly_fields = fields

    @admin.display(description=_("heatmap"))
    def heatmap(self, obj: EyeResult) -> str:
        if not obj.heatmap_path:
            return "-"
        url = reverse("screening:heatmap_file", args=[obj.id])
        return format_html('<img src="{}" style="max-width:220px" alt="{}">', url, _("Heatmap"))

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Screening)
class ScreeningAdmin(ModelAdmin):
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
        # The result of record is set by screening.result_of_record (a grader's final read).
        "final_triage",
        "final_findings",
        "final_source",
        "final_by",
        "final_at",
    ]


@admin.register(TriageRule)
class TriageRuleAdmin(ModelAdmin):
    list_display = [
        "class_code",
        "risk_factor",
        "threshold",
        "urgent_threshold",
        "referable",
        "updated_at",
    ]
    list_filter = ["class_code", "risk_factor"]
