"""One-time dispense codes and the dispenses a kiosk makes with them.

Invariants live in the database (each constraint says which race or bug it stops); the rules
that decide when a row may change live in pharmacy.services.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from pharmacy.models.catalogue import Medication
from pharmacy.models.organisation import Kiosk
from pharmacy.models.prescriptions import Prescription
from pharmacy.models.stock import StockLot


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
