"""Pharmacies, their vending kiosks, the formulary, prescriptions and the stock ledger.

Invariants live in the database (each constraint says which race or bug it stops); the rules that
decide when a row may change live in pharmacy.services.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from screening.models import Patient, Screening, Site, Symptom


class MedicationCategory(models.Model):
    """A category of the formulary. Korea's video vending machines may sell only some categories of
    OTC medicines; ``kiosk_dispensable`` is that list, and the kiosk API refuses anything else."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_ko = models.CharField(_("Korean name"), max_length=120)
    name_en = models.CharField(_("English name"), max_length=120)
    kiosk_dispensable = models.BooleanField(_("kiosks may dispense"), default=False)

    class Meta:
        ordering = ["code"]
        verbose_name = _("medication category")
        verbose_name_plural = _("medication categories")

    def __str__(self) -> str:
        return f"{self.name_ko} / {self.name_en}"


class Medication(models.Model):
    """One formulary item (a product, not a molecule: the kiosk releases boxes)."""

    class Form(models.TextChoices):
        EYE_DROPS = "eye_drops", _("Eye drops")
        SINGLE_DOSE_EYE_DROPS = "eye_drops_single", _("Single-dose eye drops")
        EYE_OINTMENT = "eye_ointment", _("Eye ointment")
        TABLET = "tablet", _("Tablet")
        CAPSULE = "capsule", _("Capsule")

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_ko = models.CharField(_("Korean name"), max_length=200)
    name_en = models.CharField(_("English name"), max_length=200)
    ingredient = models.CharField(_("active ingredient"), max_length=200, blank=True)
    form = models.CharField(_("form"), max_length=20, choices=Form.choices)
    strength = models.CharField(_("strength"), max_length=60, blank=True)
    package = models.CharField(_("package"), max_length=60, blank=True)
    category = models.ForeignKey(
        MedicationCategory,
        on_delete=models.PROTECT,
        related_name="medications",
        verbose_name=_("category"),
    )
    is_otc = models.BooleanField(_("over the counter"), default=True)
    max_quantity = models.PositiveSmallIntegerField(
        _("maximum quantity per prescription"), default=1
    )
    active = models.BooleanField(_("active"), default=True)
    # Matched (case-insensitively) against the patient's recorded allergies and notes.
    allergy_keywords = models.CharField(
        _("allergy keywords"),
        max_length=300,
        blank=True,
        help_text=_("Comma-separated words that, found in a patient's allergies, raise a warning."),
    )
    avoid_in_glaucoma = models.BooleanField(_("avoid in (suspected) glaucoma"), default=False)
    # Default medication guidance, copied into the approval form for the pharmacist to adjust.
    default_dose_ko = models.CharField(_("default dose (Korean)"), max_length=200, blank=True)
    default_dose_en = models.CharField(_("default dose (English)"), max_length=200, blank=True)
    default_frequency_ko = models.CharField(
        _("default frequency (Korean)"), max_length=200, blank=True
    )
    default_frequency_en = models.CharField(
        _("default frequency (English)"), max_length=200, blank=True
    )
    default_duration_ko = models.CharField(
        _("default duration (Korean)"), max_length=200, blank=True
    )
    default_duration_en = models.CharField(
        _("default duration (English)"), max_length=200, blank=True
    )
    default_warnings_ko = models.TextField(_("default warnings (Korean)"), blank=True)
    default_warnings_en = models.TextField(_("default warnings (English)"), blank=True)

    class Meta:
        ordering = ["name_ko"]
        verbose_name = _("medication")
        verbose_name_plural = _("medications")
        constraints = [
            models.CheckConstraint(
                condition=Q(max_quantity__gte=1), name="medication_max_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.label_ko

    @property
    def label_ko(self) -> str:
        """The Korean name with its strength, once: most names already carry it ("... 0.1%")."""
        if self.strength and self.strength not in self.name_ko:
            return f"{self.name_ko} {self.strength}"
        return self.name_ko

    @property
    def kiosk_dispensable(self) -> bool:
        return self.is_otc and self.category.kiosk_dispensable


class Pharmacy(models.Model):
    name = models.CharField(_("name"), max_length=200)
    name_en = models.CharField(_("English name"), max_length=200, blank=True)
    region = models.CharField(_("region"), max_length=100, db_index=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    latitude = models.FloatField(_("latitude"), null=True, blank=True)
    longitude = models.FloatField(_("longitude"), null=True, blank=True)
    sites: models.ManyToManyField[Site, PharmacySiteLink] = models.ManyToManyField(
        Site,
        through="PharmacySiteLink",
        related_name="+",
        blank=True,
        verbose_name=_("sites served"),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("pharmacy")
        verbose_name_plural = _("pharmacies")
        constraints = [
            models.CheckConstraint(
                condition=Q(latitude__isnull=True) | Q(latitude__gte=-90, latitude__lte=90),
                name="pharmacy_latitude_range",
            ),
            models.CheckConstraint(
                condition=Q(longitude__isnull=True) | Q(longitude__gte=-180, longitude__lte=180),
                name="pharmacy_longitude_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PharmacySiteLink(models.Model):
    """A pharmacy serves a screening site: prescriptions from that site are routed to it.

    Kept here (not as a Site field) because screening must not know about pharmacy."""

    pharmacy = models.ForeignKey(
        Pharmacy, on_delete=models.CASCADE, related_name="site_links", verbose_name=_("pharmacy")
    )
    site = models.ForeignKey(
        Site, on_delete=models.CASCADE, related_name="+", verbose_name=_("screening site")
    )

    class Meta:
        verbose_name = _("site served by a pharmacy")
        verbose_name_plural = _("sites served by pharmacies")
        constraints = [
            models.UniqueConstraint(fields=["pharmacy", "site"], name="one_link_per_pharmacy_site")
        ]

    def __str__(self) -> str:
        return f"{self.pharmacy} → {self.site}"


class PharmacistMembership(models.Model):
    """A pharmacist works for one pharmacy: the scope of every prescription and kiosk they see."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="pharmacist_membership",
        verbose_name=_("pharmacist"),
    )
    pharmacy = models.ForeignKey(
        Pharmacy, on_delete=models.PROTECT, related_name="pharmacists", verbose_name=_("pharmacy")
    )
    licence_number = models.CharField(_("licence number"), max_length=40, unique=True)

    class Meta:
        verbose_name = _("pharmacist membership")
        verbose_name_plural = _("pharmacist memberships")

    def __str__(self) -> str:
        return f"{self.user} @ {self.pharmacy}"


class Kiosk(models.Model):
    """A medicine vending kiosk of a pharmacy. It signs its API calls with ``Kiosk <kiosk_id>:<secret>``;
    only an HMAC of the secret is stored."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        MAINTENANCE = "maintenance", _("Maintenance")
        RETIRED = "retired", _("Retired")

    pharmacy = models.ForeignKey(
        Pharmacy, on_delete=models.PROTECT, related_name="kiosks", verbose_name=_("pharmacy")
    )
    kiosk_id = models.CharField(_("kiosk id"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=120)
    location = models.CharField(_("location"), max_length=300, blank=True)
    latitude = models.FloatField(_("latitude"), null=True, blank=True)
    longitude = models.FloatField(_("longitude"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.ACTIVE
    )
    secret_hash = models.CharField(_("secret (HMAC)"), max_length=64)
    last_heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    last_heartbeat_info = models.JSONField(_("last heartbeat report"), default=dict, blank=True)
    # Brute-force guard: unknown codes presented in the current window (see services).
    code_failures = models.PositiveIntegerField(_("unknown codes tried"), default=0)
    code_failures_window_start = models.DateTimeField(
        _("unknown codes counted since"), null=True, blank=True
    )

    class Meta:
        ordering = ["pharmacy", "name"]
        verbose_name = _("kiosk")
        verbose_name_plural = _("kiosks")

    def __str__(self) -> str:
        return f"{self.name} ({self.kiosk_id})"


class StockLot(models.Model):
    """Boxes of one lot of one medication in one slot of a kiosk."""

    kiosk = models.ForeignKey(
        Kiosk, on_delete=models.PROTECT, related_name="lots", verbose_name=_("kiosk")
    )
    slot = models.CharField(_("slot"), max_length=8)
    medication = models.ForeignKey(
        Medication, on_delete=models.PROTECT, related_name="lots", verbose_name=_("medication")
    )
    lot_number = models.CharField(_("lot number"), max_length=40)
    expiry = models.DateField(_("expiry date"))
    quantity = models.IntegerField(_("quantity"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["kiosk", "slot", "expiry"]
        verbose_name = _("stock lot")
        verbose_name_plural = _("stock lots")
        indexes = [models.Index(fields=["kiosk", "medication", "expiry"])]
        constraints = [
            # The last line of defence against two reservations both taking the last box: even if
            # a code path forgot its lock, PostgreSQL refuses the UPDATE that would go below zero.
            models.CheckConstraint(
                condition=Q(quantity__gte=0), name="stock_quantity_not_negative"
            ),
            models.UniqueConstraint(
                fields=["kiosk", "slot", "medication", "lot_number"], name="one_lot_row_per_slot"
            ),
        ]

    def __str__(self) -> str:
        return _("%(kiosk)s slot %(slot)s: %(medication)s, lot %(lot)s") % {
            "kiosk": self.kiosk.kiosk_id,
            "slot": self.slot,
            "medication": self.medication,
            "lot": self.lot_number,
        }


class MedicationProtocol(models.Model):
    """Admin-edited rule: a screening with one of these triage outcomes and (optionally) this
    symptom is proposed this medication. Referable, urgent and ungradable screenings never are."""

    name = models.CharField(_("name"), max_length=120)
    triage = models.JSONField(
        _("triage outcomes"),
        default=list,
        help_text=_('List of triage values, e.g. ["normal", "medication"].'),
    )
    symptom = models.CharField(
        _("symptom"),
        max_length=30,
        choices=Symptom.choices,
        blank=True,
        help_text=_("Empty: any screening with a matching triage."),
    )
    medication = models.ForeignKey(
        Medication, on_delete=models.PROTECT, related_name="+", verbose_name=_("medication")
    )
    quantity = models.PositiveSmallIntegerField(_("quantity"), default=1)
    priority = models.PositiveSmallIntegerField(_("priority"), default=100)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["priority", "id"]
        verbose_name = _("medication protocol")
        verbose_name_plural = _("medication protocols")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="protocol_quantity_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from screening.models import Triage

        allowed = {Triage.NORMAL, Triage.MEDICATION}
        valid = isinstance(self.triage, list) and all(isinstance(t, str) for t in self.triage)
        if not valid or not self.triage or not set(self.triage) <= allowed:
            raise ValidationError(
                {
                    "triage": _(
                        "A non-empty list of “normal” and/or “medication”: referable, urgent "
                        "and ungradable screenings are never treated with OTC medicine."
                    )
                }
            )


class Prescription(models.Model):
    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", _("Waiting for pharmacist")
        APPROVED = "approved", _("Approved: ready for pickup")
        DISPENSED = "dispensed", _("Dispensed")
        REJECTED = "rejected", _("Rejected")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")

    class Source(models.TextChoices):
        RULE = "rule", _("Proposed by protocol")
        USER = "user", _("Requested by health worker")

    pharmacy = models.ForeignKey(
        Pharmacy, on_delete=models.PROTECT, related_name="prescriptions", verbose_name=_("pharmacy")
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="+", verbose_name=_("patient")
    )
    screening = models.ForeignKey(
        Screening, on_delete=models.PROTECT, related_name="+", verbose_name=_("screening")
    )
    source = models.CharField(_("source"), max_length=8, choices=Source.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    request_note = models.TextField(_("request note"), blank=True)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=Status.choices,
        default=Status.PENDING_APPROVAL,
        db_index=True,
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decision_note = models.TextField(_("pharmacist's note or reason"), blank=True)
    # {"ko": {"dose", "frequency", "duration", "warnings"}, "en": {...}}: the medication guidance
    # (복약지도) the kiosk shows and the patient confirms before anything is released.
    counselling = models.JSONField(_("medication guidance"), default=dict, blank=True)
    pickup_expires_at = models.DateTimeField(_("pickup expires"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("prescription")
        verbose_name_plural = _("prescriptions")
        indexes = [models.Index(fields=["pharmacy", "status", "-created_at"])]
        constraints = [
            # A redelivered "screening completed" task must not propose a second prescription.
            models.UniqueConstraint(
                fields=["screening"],
                condition=Q(source="rule"),
                name="one_rule_prescription_per_screening",
            ),
            # Approval is only valid with a recorded pharmacist and guidance.
            models.CheckConstraint(
                condition=~Q(status__in=["approved", "dispensed"])
                | (Q(decided_by__isnull=False) & Q(decided_at__isnull=False) & ~Q(counselling={})),
                name="approved_prescription_has_pharmacist_and_counselling",
            ),
        ]

    def __str__(self) -> str:
        # The patient's code, never the name: this label shows up in every related admin list.
        return _("Prescription %(id)s for %(patient)s (%(status)s)") % {
            "id": self.pk,
            "patient": self.patient.pseudonym if self.patient_id else "-",
            "status": self.get_status_display(),
        }


class PrescriptionItem(models.Model):
    prescription = models.ForeignKey(
        Prescription,
        on_delete=models.CASCADE,
        related_name="items",
        verbose_name=_("prescription"),
    )
    medication = models.ForeignKey(
        Medication, on_delete=models.PROTECT, related_name="+", verbose_name=_("medication")
    )
    quantity = models.PositiveSmallIntegerField(_("quantity"))

    class Meta:
        ordering = ["id"]
        verbose_name = _("prescription item")
        verbose_name_plural = _("prescription items")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="item_quantity_positive"),
            models.UniqueConstraint(
                fields=["prescription", "medication"], name="one_item_per_medication"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.medication} × {self.quantity}"


class PrescriptionEvent(models.Model):
    """Audit history of a prescription: every status change, who made it and why."""

    prescription = models.ForeignKey(
        Prescription,
        on_delete=models.CASCADE,
        related_name="events",
        verbose_name=_("prescription"),
    )
    from_status = models.CharField(_("from status"), max_length=20, blank=True)
    to_status = models.CharField(_("to status"), max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    kiosk = models.ForeignKey(
        Kiosk,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("kiosk"),
    )
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("prescription event")
        verbose_name_plural = _("prescription events")

    def __str__(self) -> str:
        labels = dict(Prescription.Status.choices)
        return "{} → {}".format(
            labels.get(self.from_status, self.from_status or "-"),
            labels.get(self.to_status, self.to_status),
        )


class DispenseCode(models.Model):
    """The one-time pickup code of an approved prescription.

    Only an HMAC of the code is stored (``code_hash``, used for the lookup). The code itself is
    derived from SECRET_KEY and ``salt`` so that the health worker's page can show it again, while
    a copy of the database alone reveals no code."""

    prescription = models.OneToOneField(
        Prescription,
        on_delete=models.CASCADE,
        related_name="dispense_code",
        verbose_name=_("prescription"),
    )
    code_hash = models.CharField(max_length=64, unique=True)
    salt = models.CharField(max_length=32)
    expires_at = models.DateTimeField(_("expires"))
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    used_at = models.DateTimeField(_("used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("pickup code")
        verbose_name_plural = _("pickup codes")

    def __str__(self) -> str:
        # Never the code: only which prescription it opens and whether it still does.
        state: str
        if self.used_at:
            state = str(_("used"))
        elif self.revoked_at:
            state = str(_("revoked"))
        else:
            state = str(_("expires %(when)s")) % {
                "when": f"{self.expires_at:%Y-%m-%d %H:%M}" if self.expires_at else "-"
            }
        return _("Pickup code for prescription %(id)s (%(state)s)") % {
            "id": self.prescription_id,
            "state": state,
        }


class Dispense(models.Model):
    """One release at a kiosk: reserved -> completed | failed.

    reserved: stock taken from lots, waiting for the patient's confirmation of the guidance and the
    machine's release. failed (a jam, a timeout): stock put back."""

    class Status(models.TextChoices):
        RESERVED = "reserved", _("Reserved")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")

    kiosk = models.ForeignKey(
        Kiosk, on_delete=models.PROTECT, related_name="dispenses", verbose_name=_("kiosk")
    )
    prescription = models.ForeignKey(
        Prescription,
        on_delete=models.PROTECT,
        related_name="dispenses",
        verbose_name=_("prescription"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.RESERVED, db_index=True
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=100)
    counselling_confirmed_at = models.DateTimeField(_("guidance confirmed"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed"), null=True, blank=True)
    failure_reason = models.CharField(_("failure reason"), max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("dispense")
        verbose_name_plural = _("dispenses")
        constraints = [
            # The same code presented at two kiosks at once (or 50 times at one): whichever request
            # loses the prescription lock finds this row, and if a lock were ever skipped the
            # insert itself fails. A failed dispense does not count: the patient may try again.
            models.UniqueConstraint(
                fields=["prescription"],
                condition=Q(status__in=["reserved", "completed"]),
                name="one_live_dispense_per_prescription",
            ),
            models.CheckConstraint(
                condition=~Q(status="completed") | Q(counselling_confirmed_at__isnull=False),
                name="completed_dispense_had_counselling",
            ),
        ]

    def __str__(self) -> str:
        return _("Dispense %(id)s at %(kiosk)s (%(status)s)") % {
            "id": self.pk,
            "kiosk": self.kiosk.kiosk_id if self.kiosk_id else "-",
            "status": self.get_status_display(),
        }


class DispenseLine(models.Model):
    dispense = models.ForeignKey(
        Dispense, on_delete=models.CASCADE, related_name="lines", verbose_name=_("dispense")
    )
    lot = models.ForeignKey(
        StockLot, on_delete=models.PROTECT, related_name="+", verbose_name=_("stock lot")
    )
    medication = models.ForeignKey(
        Medication, on_delete=models.PROTECT, related_name="+", verbose_name=_("medication")
    )
    slot = models.CharField(_("slot"), max_length=8)
    quantity = models.PositiveSmallIntegerField(_("quantity"))

    class Meta:
        ordering = ["id"]
        verbose_name = _("dispense line")
        verbose_name_plural = _("dispense lines")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="line_quantity_positive")
        ]

    def __str__(self) -> str:
        return f"{self.medication} × {self.quantity} [{self.slot}]"


class StockMovement(models.Model):
    """The stock ledger: every change of a lot's quantity, so that reconcile_stock can prove that
    the sum of movements equals the quantity on hand and that dispenses match their movements."""

    class Reason(models.TextChoices):
        RECEIVE = "receive", _("Received")
        RESERVE = "reserve", _("Reserved for a dispense")
        RESTORE = "restore", _("Restored after a failed dispense")
        ADJUST = "adjust", _("Manual adjustment")
        WRITE_OFF = "write_off", _("Written off (expired or damaged)")

    lot = models.ForeignKey(
        StockLot, on_delete=models.PROTECT, related_name="movements", verbose_name=_("stock lot")
    )
    delta = models.IntegerField(_("change"))
    reason = models.CharField(_("reason"), max_length=12, choices=Reason.choices)
    dispense = models.ForeignKey(
        Dispense,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="movements",
        verbose_name=_("dispense"),
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        constraints = [
            models.CheckConstraint(condition=~Q(delta=0), name="movement_delta_not_zero"),
            # A restore is written once per dispense line's lot: a repeated "fail" cannot put the
            # same boxes back twice.
            models.UniqueConstraint(
                fields=["dispense", "lot", "reason"],
                condition=Q(dispense__isnull=False),
                name="one_movement_per_dispense_lot_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.delta:+d} · {self.get_reason_display()}"


class IdempotencyRecord(models.Model):
    """The answer to a kiosk request, kept under its Idempotency-Key (after pretix): a retry gets the
    same answer, a concurrent duplicate gets 409, a reused key with another body gets 422."""

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight", _("In flight")
        DONE = "done", _("Done")

    kiosk = models.ForeignKey(
        Kiosk, on_delete=models.CASCADE, related_name="+", verbose_name=_("kiosk")
    )
    key = models.CharField(_("idempotency key"), max_length=100)
    method_path = models.CharField(_("request"), max_length=200)
    request_hash = models.CharField(_("request hash"), max_length=64)
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.IN_FLIGHT
    )
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_body = models.JSONField(_("response"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("kiosk request record")
        verbose_name_plural = _("kiosk request records")
        constraints = [
            models.UniqueConstraint(fields=["kiosk", "key"], name="one_record_per_kiosk_key")
        ]

    def __str__(self) -> str:
        return f"{self.method_path} ({self.get_state_display()}, {self.response_status or '-'})"


class KioskCallRequest(models.Model):
    """A patient at a kiosk asks to talk to the on-duty pharmacist."""

    class Status(models.TextChoices):
        OPEN = "open", _("Waiting")
        ANSWERED = "answered", _("Answered")

    kiosk = models.ForeignKey(
        Kiosk, on_delete=models.PROTECT, related_name="call_requests", verbose_name=_("kiosk")
    )
    pharmacy = models.ForeignKey(
        Pharmacy,
        on_delete=models.PROTECT,
        related_name="call_requests",
        verbose_name=_("pharmacy"),
    )
    dispense = models.ForeignKey(
        Dispense,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("dispense"),
    )
    message = models.CharField(_("message"), max_length=300, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("answered by"),
    )
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("call request")
        verbose_name_plural = _("call requests")

    def __str__(self) -> str:
        return _("Call from %(kiosk)s, %(when)s (%(status)s)") % {
            "kiosk": self.kiosk.name if self.kiosk_id else "-",
            "when": f"{self.created_at:%Y-%m-%d %H:%M}" if self.created_at else "-",
            "status": self.get_status_display(),
        }


class PharmacyAlert(models.Model):
    """Something the pharmacist must act on now (a jam). Low stock, expiry and offline kiosks are
    computed live by the selectors and need no row."""

    class Kind(models.TextChoices):
        DISPENSE_FAILED = "dispense_failed", _("Dispense failed")
        # A grader's final read sent the patient to an eye doctor after the prescription was
        # approved or dispensed (pharmacy.services.result): the pharmacist decides, not a task.
        RESULT_CHANGED = "result_changed", _("Screening result changed")

    pharmacy = models.ForeignKey(
        Pharmacy, on_delete=models.PROTECT, related_name="alerts", verbose_name=_("pharmacy")
    )
    kiosk = models.ForeignKey(
        Kiosk,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("kiosk"),
    )
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    object_ref = models.CharField(_("concerns"), max_length=120)
    message = models.TextField(_("message"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("pharmacy alert")
        verbose_name_plural = _("pharmacy alerts")
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "object_ref"],
                condition=Q(resolved_at__isnull=True),
                name="one_open_pharmacy_alert_per_object",
            )
        ]

    def __str__(self) -> str:
        state = _("resolved") if self.resolved_at else _("open")
        return f"{self.get_kind_display()}: {self.object_ref} ({state})"
