"""The stock ledger: lots in a kiosk and every movement of them (the counter and its history).

Invariants live in the database (each constraint says which race or bug it stops); the rules
that decide when a row may change live in pharmacy.services.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from pharmacy.models.catalogue import Medication
from pharmacy.models.organisation import Kiosk


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
        "pharmacy.Dispense",
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
