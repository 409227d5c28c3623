from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from accounts.admin_json import ModelAdmin, TabularInline
from referrals.imports import IMPORT_COLUMNS, hospitals_import_csv
from referrals.models import Hospital, HospitalStaffMembership, Referral, ReferralEvent, Specialty


@admin.register(Specialty)
class SpecialtyAdmin(ModelAdmin):
    list_display = ["code", "name", "name_en"]
    search_fields = ["code", "name", "name_en"]


class HasCoordinatesFilter(admin.SimpleListFilter):
    title = _("coordinates")
    parameter_name = "coords"

    def lookups(self, request, model_admin):
        return [("missing", _("Missing (not ranked)")), ("present", _("Present"))]

    def queryset(self, request, queryset):
        if self.value() == "missing":
            return queryset.filter(Q(latitude__isnull=True) | Q(longitude__isnull=True))
        if self.value() == "present":
            return queryset.filter(latitude__isnull=False, longitude__isnull=False)
        return queryset


class HospitalImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"))
    dry_run = forms.BooleanField(label=_("Only check, import nothing"), required=False)


@admin.register(Hospital)
class HospitalAdmin(ModelAdmin):
    list_display = [
        "name",
        "name_en",
        "coordinates_flag",
        "is_partner",
        "accepts_referrals",
        "open_slots",
        "weekly_capacity",
        "typical_wait_days",
    ]
    list_filter = [HasCoordinatesFilter, "is_partner", "accepts_referrals", "specialties"]
    search_fields = ["name", "name_en", "address"]
    filter_horizontal = ["specialties"]
    change_list_template = "admin/referrals/hospital/change_list.html"

    @admin.display(description=_("coordinates"), boolean=True)
    def coordinates_flag(self, obj: Hospital) -> bool:
        # A hospital without coordinates is never proposed: flag it for the admin to fix.
        return obj.has_coordinates

    def get_urls(self):
        return [
            path(
                "import-csv/",
                self.admin_site.admin_view(self.import_csv_view),
                name="referrals_hospital_import",
            ),
        ] + super().get_urls()

    def import_csv_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            return redirect("admin:index")
        report = None
        form = HospitalImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            report = hospitals_import_csv(
                data=form.cleaned_data["file"].read(), dry_run=form.cleaned_data["dry_run"]
            )
            if report.ok and not report.dry_run:
                messages.success(request, _("%(n)d hospitals imported.") % {"n": report.created})
                return redirect(reverse("admin:referrals_hospital_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "report": report,
            "columns": IMPORT_COLUMNS,
            "title": _("Import hospitals from CSV"),
            "opts": self.model._meta,
        }
        return TemplateResponse(
            request,
            "admin/referrals/hospital/import.html",
            context,
            status=400 if report and not report.ok else 200,
        )


@admin.register(HospitalStaffMembership)
class HospitalStaffMembershipAdmin(ModelAdmin):
    list_display = ["user", "hospital"]
    search_fields = ["user__username", "hospital__name"]
    autocomplete_fields = ["hospital"]
    raw_id_fields = ["user"]


_EVENT_FIELDS = ("created_at", "kind", "from_status", "to_status", "hospital", "actor", "note")


class ReferralEventInline(TabularInline):
    model = ReferralEvent
    extra = 0
    can_delete = False
    fields = _EVENT_FIELDS
    readonly_fields = _EVENT_FIELDS

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # history is written by the services only


@admin.register(Referral)
class ReferralAdmin(ModelAdmin):
    list_display = [
        "id",
        "screening",
        "status",
        "urgency",
        "hospital",
        "appointment_at",
        "escalation_exhausted",
        "updated_at",
    ]
    list_filter = ["status", "urgency", "escalation_exhausted"]
    search_fields = ["id", "screening__patient__pseudonym", "hospital__name"]
    list_select_related = ["hospital", "screening__patient"]
    inlines = [ReferralEventInline]
    # Status changes go through the services (conditional updates + history); the admin reads.
    readonly_fields = [f.name for f in Referral._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
