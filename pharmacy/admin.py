"""Admin for every pharmacy model. The ledger and audit tables are read-only: history is not edited."""

from __future__ import annotations

from typing import cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.core.validators import RegexValidator
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin_json import ModelAdmin, TabularInline
from pharmacy import models, services
from screening.models import Triage


class ReadOnlyAdmin(ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.MedicationCategory)
class MedicationCategoryAdmin(ModelAdmin):
    list_display = ["code", "name_ko", "name_en", "kiosk_dispensable"]
    list_filter = ["kiosk_dispensable"]
    search_fields = ["code", "name_ko", "name_en"]


@admin.register(models.Medication)
class MedicationAdmin(ModelAdmin):
    list_display = [
        "code",
        "name_ko",
        "name_en",
        "strength",
        "form",
        "category",
        "is_otc",
        "max_quantity",
        "active",
    ]
    list_filter = ["category", "form", "is_otc", "active", "avoid_in_glaucoma"]
    search_fields = ["code", "name_ko", "name_en", "ingredient"]


class PharmacySiteLinkInline(TabularInline):
    model = models.PharmacySiteLink
    extra = 0
    autocomplete_fields = ["site"]


@admin.register(models.Pharmacy)
class PharmacyAdmin(ModelAdmin):
    list_display = ["name", "name_en", "region", "phone"]
    list_filter = ["region"]
    search_fields = ["name", "name_en", "address"]
    inlines = [PharmacySiteLinkInline]


@admin.register(models.PharmacySiteLink)
class PharmacySiteLinkAdmin(ModelAdmin):
    list_display = ["pharmacy", "site"]
    list_filter = ["pharmacy"]
    search_fields = ["pharmacy__name", "site__name"]


@admin.register(models.PharmacistMembership)
class PharmacistMembershipAdmin(ModelAdmin):
    list_display = ["user", "pharmacy", "licence_number"]
    list_filter = ["pharmacy"]
    search_fields = ["user__username", "licence_number"]


class KioskAddForm(forms.ModelForm):
    kiosk_id = forms.CharField(
        label=_("kiosk id"),
        max_length=32,
        required=False,
        validators=[RegexValidator(services.KIOSK_ID_RE)],
        help_text=_("Leave blank for a generated id. Letters, digits, dots, dashes, underscores."),
    )

    class Meta:
        model = models.Kiosk
        fields = ["pharmacy", "name", "kiosk_id", "location", "latitude", "longitude"]

    def clean_kiosk_id(self) -> str:
        return self.cleaned_data["kiosk_id"] or services.kiosk_new_id()


class KioskChangeForm(forms.ModelForm):
    class Meta:
        model = models.Kiosk
        fields = ["name", "location", "latitude", "longitude", "status"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "status" in self.fields:
            # Retiring is final and audited: its own action, not a value of this form.
            status = cast(forms.ChoiceField, self.fields["status"])
            status.choices = [
                c for c in models.Kiosk.Status.choices if c[0] != models.Kiosk.Status.RETIRED
            ]


@admin.register(models.Kiosk)
class KioskAdmin(ModelAdmin):
    """Registering a kiosk shows its secret once (only its HMAC is stored); "Rotate secret" and
    "Retire" are actions on the list and buttons on a kiosk's page, each with a confirmation
    page and an audit entry (pharmacy.services.kiosk_register / kiosk_rotate_secret /
    kiosk_retire). Kiosks are never deleted: their dispenses and stock ledger point at them."""

    list_display = ["kiosk_id", "name", "pharmacy", "status", "last_heartbeat_at", "code_failures"]
    list_filter = ["pharmacy", "status"]
    search_fields = ["kiosk_id", "name", "location"]
    actions = ["rotate_secrets", "retire_kiosks"]
    change_form_template = "admin/pharmacy/kiosk/change_form.html"
    _state_fields = [
        "last_heartbeat_at",
        "last_heartbeat_info",
        "code_failures",
        "code_failures_window_start",
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = KioskChangeForm if obj is not None else KioskAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def base_fields(self, request, obj=None) -> tuple[str, ...]:
        if obj is None:
            return tuple(KioskAddForm.Meta.fields)
        return ("kiosk_id", "pharmacy", *KioskChangeForm.Meta.fields, *self._state_fields)

    def base_readonly_fields(self, request, obj=None) -> list[str]:
        if obj is None:
            return []
        # The id is configured on the device and named in the audit trail; the pharmacy owns
        # the kiosk's stock and codes: neither changes after registration.
        readonly = ["kiosk_id", "pharmacy", *self._state_fields]
        if obj.status == models.Kiosk.Status.RETIRED:
            readonly.append("status")
        return readonly

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # retire instead: history (dispenses, ledger, audit) keeps pointing at it

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        kiosk, secret = services.kiosk_register(
            pharmacy=obj.pharmacy,
            name=obj.name,
            kiosk_id=obj.kiosk_id,
            location=obj.location,
            latitude=obj.latitude,
            longitude=obj.longitude,
            actor=request.user,
            request=request,
            via="admin:pharmacy_kiosk_add",
        )
        obj.pk, obj.secret_hash, obj._state = kiosk.pk, kiosk.secret_hash, kiosk._state
        request._kiosk_secrets = [(kiosk, secret)]

    def response_add(self, request, obj, post_url_continue=None):
        return self._secrets_page(request, request._kiosk_secrets, title=_("Kiosk registered"))

    # --- rotate and retire: list actions and per-kiosk pages ----------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/rotate-secret/",
                wrap(self.rotate_secret_view),
                name="{}_{}_rotate_secret".format(*info),
            ),
            path(
                "<path:object_id>/retire/",
                wrap(self.retire_view),
                name="{}_{}_retire".format(*info),
            ),
            *super().get_urls(),
        ]

    @admin.action(description=_("Rotate the secret of the selected kiosks"), permissions=["change"])
    def rotate_secrets(self, request, queryset):
        return self._rotate(request, list(queryset), action="rotate_secrets")

    @admin.action(description=_("Retire the selected kiosks"), permissions=["change"])
    def retire_kiosks(self, request, queryset):
        return self._retire(request, list(queryset), action="retire_kiosks")

    def rotate_secret_view(self, request, object_id: str):
        return self._rotate(request, [self._kiosk_or_404(request, object_id)], action="")

    def retire_view(self, request, object_id: str):
        return self._retire(request, [self._kiosk_or_404(request, object_id)], action="")

    def _kiosk_or_404(self, request, object_id: str) -> models.Kiosk:
        kiosk = self.get_object(request, unquote(object_id))
        if kiosk is None:
            raise Http404
        if not self.has_change_permission(request, kiosk):
            raise PermissionDenied
        return kiosk

    # What each confirmation page asks, by the change it confirms (also the name of its view).
    _questions = {
        "rotate_secret": (
            _("Rotate kiosk secrets"),
            _(
                "Each kiosk below gets a new secret, shown once on the next page. Its current "
                "secret stops working at once: the kiosk is refused until it is configured "
                "with the new one."
            ),
        ),
        "retire": (
            _("Retire kiosks"),
            _(
                "The kiosks below are refused from now on and cannot be brought back. Their "
                "dispenses, stock ledger and audit history are kept."
            ),
        ),
    }

    def _confirmed(self, request) -> bool:
        return request.method == "POST" and request.POST.get("post") == "yes"

    @staticmethod
    def _via(action: str, change: str) -> str:
        """The entry point named in the audit entry: the list for an action, else the kiosk's page."""
        return f"admin:pharmacy_kiosk_{'changelist' if action else change}"

    def _rotate(self, request, kiosks: list, *, action: str):
        live = [k for k in kiosks if k.status != models.Kiosk.Status.RETIRED]
        if len(live) < len(kiosks) and (not live or self._confirmed(request)):
            self.message_user(
                request,
                _("Retired kiosks get no new secret; they were left out."),
                messages.WARNING,
            )
        if not live:
            return self._back(request, kiosks, action)
        if not self._confirmed(request):
            return self._confirm_page(request, live, action=action, change="rotate_secret")
        via = self._via(action, "rotate_secret")
        pairs = [
            (k, services.kiosk_rotate_secret(kiosk=k, actor=request.user, request=request, via=via))
            for k in live
        ]
        return self._secrets_page(request, pairs, title=_("New kiosk secrets"))

    def _retire(self, request, kiosks: list, *, action: str):
        if not self._confirmed(request):
            return self._confirm_page(request, kiosks, action=action, change="retire")
        via = self._via(action, "retire")
        done = 0
        for kiosk in kiosks:
            done += services.kiosk_retire(
                kiosk=kiosk, actor=request.user, request=request, via=via
            )[1]
        self.message_user(
            request,
            ngettext("%(n)d kiosk retired.", "%(n)d kiosks retired.", done) % {"n": done},
            messages.SUCCESS,
        )
        return self._back(request, kiosks, action)

    def _back(self, request, kiosks: list, action: str):
        if action:
            return None  # an action: Django returns to the list
        return HttpResponseRedirect(
            reverse("admin:pharmacy_kiosk_change", args=[quote(kiosks[0].pk)])
        )

    def _page_context(self, request, title) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.opts, "title": title}

    def _confirm_page(self, request, kiosks: list, *, action: str, change: str):
        title, question = self._questions[change]
        context = {
            **self._page_context(request, title),
            "question": question,
            "kiosks": kiosks,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/pharmacy/kiosk/confirm.html", context)

    def _secrets_page(self, request, pairs: list, *, title):
        """The only time a secret is shown: rendered into this response, stored nowhere (not in a
        message, the session or the audit trail), and the response is not cached."""
        context = {
            **self._page_context(request, title),
            "rows": [{"kiosk": k, "secret": s} for k, s in pairs],
        }
        response = TemplateResponse(request, "admin/pharmacy/kiosk/secrets.html", context)
        add_never_cache_headers(response)
        return response


@admin.register(models.StockLot)
class StockLotAdmin(ModelAdmin):
    list_display = ["kiosk", "slot", "medication", "lot_number", "expiry", "quantity"]
    list_filter = ["kiosk__pharmacy", "kiosk", "medication", "expiry"]
    search_fields = ["lot_number", "medication__name_ko", "medication__name_en"]
    # Quantities change only through the ledger (services), never by editing the row: lots are
    # received on the pharmacist's stock page (or by seed_demo_pharmacy).
    readonly_fields = ["quantity"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(models.StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "lot", "delta", "reason", "dispense", "actor", "note"]
    list_filter = ["reason", "lot__kiosk"]
    search_fields = ["lot__lot_number", "note"]
    date_hierarchy = "created_at"


@admin.register(models.MedicationProtocol)
class MedicationProtocolAdmin(ModelAdmin):
    list_display = [
        "name",
        "triage_labels",
        "symptom",
        "medication",
        "quantity",
        "priority",
        "active",
    ]
    list_filter = ["active", "symptom"]
    search_fields = ["name", "medication__name_ko"]

    @admin.display(description=_("triage outcomes"))
    def triage_labels(self, obj: models.MedicationProtocol) -> str:
        # The list holds triage values ("normal"); show their names in the reader's language.
        labels = dict(Triage.choices)
        values = obj.triage if isinstance(obj.triage, list) else []
        return ", ".join(str(labels.get(v, v)) for v in values) or "-"


class PrescriptionItemInline(TabularInline):
    model = models.PrescriptionItem
    extra = 0


class PrescriptionEventInline(TabularInline):
    model = models.PrescriptionEvent
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "from_status", "to_status", "actor", "kiosk", "note"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Prescription)
class PrescriptionAdmin(ModelAdmin):
    list_display = ["id", "patient", "pharmacy", "status", "source", "decided_by", "created_at"]
    list_filter = ["status", "source", "pharmacy"]
    search_fields = ["patient__pseudonym", "patient__name"]
    date_hierarchy = "created_at"
    raw_id_fields = ["patient", "screening", "requested_by", "decided_by"]
    # Status changes go through the services (which keep the audit trail), not through this form.
    readonly_fields = ["status", "decided_by", "decided_at", "counselling", "pickup_expires_at"]
    inlines = [PrescriptionItemInline, PrescriptionEventInline]


@admin.register(models.PrescriptionEvent)
class PrescriptionEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "prescription", "from_status", "to_status", "actor", "kiosk"]
    list_filter = ["to_status"]
    search_fields = ["prescription__id", "note"]


@admin.register(models.DispenseCode)
class DispenseCodeAdmin(ReadOnlyAdmin):
    list_display = ["prescription", "expires_at", "attempts", "used_at", "revoked_at"]
    exclude = ["code_hash", "salt"]


class DispenseLineInline(TabularInline):
    model = models.DispenseLine
    extra = 0
    can_delete = False
    readonly_fields = ["lot", "medication", "slot", "quantity"]


@admin.register(models.Dispense)
class DispenseAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "kiosk",
        "prescription",
        "status",
        "counselling_confirmed_at",
        "created_at",
        "failure_reason",
    ]
    list_filter = ["status", "kiosk"]
    search_fields = ["idempotency_key", "prescription__id"]
    inlines = [DispenseLineInline]


@admin.register(models.DispenseLine)
class DispenseLineAdmin(ReadOnlyAdmin):
    list_display = ["dispense", "medication", "slot", "lot", "quantity"]


@admin.register(models.IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ["kiosk", "key", "state", "response_status", "created_at"]
    list_filter = ["state", "response_status"]
    search_fields = ["key"]


@admin.register(models.KioskCallRequest)
class KioskCallRequestAdmin(ModelAdmin):
    list_display = ["created_at", "kiosk", "pharmacy", "status", "answered_by", "message"]
    list_filter = ["status", "pharmacy"]


@admin.register(models.PharmacyAlert)
class PharmacyAlertAdmin(ModelAdmin):
    list_display = ["created_at", "pharmacy", "kiosk", "kind", "resolved_at", "message"]
    list_filter = ["kind", "pharmacy"]
    search_fields = ["object_ref", "message"]


@admin.register(models.PrescriptionItem)
class PrescriptionItemAdmin(ModelAdmin):
    list_display = ["prescription", "medication", "quantity"]
    list_filter = ["medication"]
    search_fields = ["prescription__id", "medication__name_ko", "medication__name_en"]
    raw_id_fields = ["prescription"]
