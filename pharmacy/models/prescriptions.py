"""Prescriptions proposed from a screening, their items and their audited history.

Invariants live in the database (each constraint says which race or bug it stops); the rules
that decide when a row may change live in pharmacy.services.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from pharmacy.models.catalogue import Medication
from pharmacy.models.organisation import Kiosk, Pharmacy
from screening.models import Patient, Screening


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

    class SystemNote(models.TextChoices):
        """The notes the platform writes itself. Stored as these stable keys, so the history is
        the same whichever language wrote it, and shown translated (the ``rx_note`` filter); a
        person's note (a rejection reason) is stored and shown as written. The labels are the
        prescription sources' own."""

        PROPOSED = "proposed by protocol", Prescription.Source.RULE.label
        REQUESTED = "requested by health worker", Prescription.Source.USER.label
        PICKUP_EXPIRED = "pickup window passed", _("Pickup window passed")

    # The note of the event that completed a prescription at a kiosk: written by
    # ``dispense_note`` and read back by this pattern, side by side so that they agree.
    DISPENSE_NOTE = re.compile(r"^dispense (\d+)$")

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

    @staticmethod
    def dispense_note(dispense_id: int) -> str:
        return f"dispense {dispense_id}"
