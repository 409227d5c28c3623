from django.contrib import admin

from accounts.admin_json import ModelAdmin, TabularInline
from grading.models import (
    CaseEvent,
    EyeRead,
    GraderMembership,
    GraderRead,
    GradingCase,
    ReadingCentre,
)


class GraderMembershipInline(TabularInline):
    model = GraderMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(ReadingCentre)
class ReadingCentreAdmin(ModelAdmin):
    list_display = ["name", "name_en", "phone", "partner_hospital_id"]
    search_fields = ["name", "name_en"]
    filter_horizontal = ["sites"]
    inlines = [GraderMembershipInline]


class EyeReadInline(TabularInline):
    model = EyeRead
    extra = 0
    can_delete = False
    readonly_fields = ["eye", "gradable", "findings", "dr_grade"]


@admin.register(GraderRead)
class GraderReadAdmin(ModelAdmin):
    """Reads are evidence: shown, never edited here (a correction is a new case's read)."""

    list_display = ["case", "role", "grader", "next_step", "refer", "created_at"]
    list_filter = ["role", "next_step"]
    readonly_fields = [f.name for f in GraderRead._meta.fields]
    inlines = [EyeReadInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class CaseEventInline(TabularInline):
    model = CaseEvent
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "read", "actor", "note", "created_at"]


@admin.register(GradingCase)
class GradingCaseAdmin(ModelAdmin):
    list_display = ["screening", "reason", "stage", "urgent", "ai_triage", "due_at", "escalated_at"]
    list_filter = ["stage", "reason", "urgent"]
    readonly_fields = [f.name for f in GradingCase._meta.fields]
    inlines = [CaseEventInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
