"""Kiosk operations: idempotent retries, calls to the pharmacist, and alerts.

Invariants live in the database (each constraint says which race or bug it stops); the rules
that decide when a row may change live in pharmacy.services.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from pharmacy.models.dispensing import Dispense
from pharmacy.models.organisation import Kiosk, Pharmacy


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
