"""Admin for every pharmacy model. The ledger and audit tables are read-only: history is not edited."""

from __future__ import annotations

from django.contrib import admin

from pharmacy import models


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(models.MedicationCategory)
class MedicationCategoryAdmin(admin.ModelAdmin):
    list_display = ["code", "name_ko", "name_en", "kiosk_dispensable"]
    list_filter = ["kiosk_dispensable"]
    search_fields = ["code", "name_ko", "name_en"]


@admin.register(models.Medication)
class MedicationAdmin(admin.ModelAdmin):
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


class PharmacySiteLinkInline(admin.TabularInline):
    model = models.PharmacySiteLink
    extra = 0
    autocomplete_fields = ["site"]


@admin.register(models.Pharmacy)
class PharmacyAdmin(admin.ModelAdmin):
    list_display = ["name", "name_en", "region", "phone"]
    list_filter = ["region"]
    search_fields = ["name", "name_en", "address"]
    inlines = [PharmacySiteLinkInline]


@admin.register(models.PharmacySiteLink)
class PharmacySiteLinkAdmin(admin.ModelAdmin):
    list_display = ["pharmacy", "site"]
    list_filter = ["pharmacy"]
    search_fields = ["pharmacy__name", "site__name"]


@admin.register(models.PharmacistMembership)
class PharmacistMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "pharmacy", "licence_number"]
    list_filter = ["pharmacy"]
    search_fields = ["user__username", "licence_number"]


@admin.register(models.Kiosk)
class KioskAdmin(admin.ModelAdmin):
    list_display = ["kiosk_id", "name", "pharmacy", "status", "last_heartbeat_at", "code_failures"]
    list_filter = ["pharmacy", "status"]
    search_fields = ["kiosk_id", "name", "location"]
    # The secret is set by kiosk_create / rotate; the admin never shows or edits its hash.
    exclude = ["secret_hash"]
    readonly_fields = [
        "last_heartbeat_at",
        "last_heartbeat_info",
        "code_failures",
        "code_failures_window_start",
    ]

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return (
            False  # kiosks are created with `seed_demo_pharmacy` or pharmacy.services.kiosk_create
        )


@admin.register(models.StockLot)
class StockLotAdmin(admin.ModelAdmin):
    list_display = ["kiosk", "slot", "medication", "lot_number", "expiry", "quantity"]
    list_filter = ["kiosk__pharmacy", "kiosk", "medication", "expiry"]
    search_fields = ["lot_number", "medication__name_ko", "medication__name_en"]
    # Quantities change only through the ledger (services), never by editing the row: lots are
    # received on the pharmacist's stock page (or by seed_demo_pharmacy).
    readonly_fields = ["quantity"]

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False


@admin.register(models.StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "lot", "delta", "reason", "dispense", "actor", "note"]
    list_filter = ["reason", "lot__kiosk"]
    search_fields = ["lot__lot_number", "note"]
    date_hierarchy = "created_at"


@admin.register(models.MedicationProtocol)
class MedicationProtocolAdmin(admin.ModelAdmin):
    list_display = ["name", "triage", "symptom", "medication", "quantity", "priority", "active"]
    list_filter = ["active", "symptom"]
    search_fields = ["name", "medication__name_ko"]


class PrescriptionItemInline(admin.TabularInline):
    model = models.PrescriptionItem
    extra = 0


class PrescriptionEventInline(admin.TabularInline):
    model = models.PrescriptionEvent
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "from_status", "to_status", "actor", "kiosk", "note"]

    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(models.Prescription)
class PrescriptionAdmin(admin.ModelAdmin):
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


class DispenseLineInline(admin.TabularInline):
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
class KioskCallRequestAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kiosk", "pharmacy", "status", "answered_by", "message"]
    list_filter = ["status", "pharmacy"]


@admin.register(models.PharmacyAlert)
class PharmacyAlertAdmin(admin.ModelAdmin):
    list_display = ["created_at", "pharmacy", "kiosk", "kind", "resolved_at", "message"]
    list_filter = ["kind", "pharmacy"]
    search_fields = ["object_ref", "message"]


@admin.register(models.PrescriptionItem)
class PrescriptionItemAdmin(admin.ModelAdmin):
    list_display = ["prescription", "medication", "quantity"]
    list_filter = ["medication"]
    search_fields = ["prescription__id", "medication__name_ko", "medication__name_en"]
    raw_id_fields = ["prescription"]
