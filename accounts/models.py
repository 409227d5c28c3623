from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    HEALTH_WORKER = "health_worker", _("Health worker")
    PHARMACIST = "pharmacist", _("Pharmacist")
    HOSPITAL_STAFF = "hospital_staff", _("Hospital staff")
    ADMIN = "admin", _("Administrator")


class User(AbstractUser):
    """A person who signs in. The role says which portal they use; the membership in the role's
    app (screening.SiteMembership, pharmacy.PharmacistMembership, referrals.HospitalStaffMembership)
    says which organisation's data they see."""

    role = models.CharField(_("role"), max_length=20, choices=Role.choices, blank=True)
    preferred_language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="ko"
    )

    @property
    def is_platform_admin(self) -> bool:
        return self.is_superuser or self.role == Role.ADMIN


class OutboundMessage(models.Model):
    """Every message sent to a patient (dispense code, referral update), whatever the backend.

    The row is the record of what the patient was told; the backend only delivers it."""

    class Status(models.TextChoices):
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    to = models.CharField(max_length=32)
    body = models.TextField()
    backend = models.CharField(max_length=120)
    status = models.CharField(max_length=10, choices=Status.choices)
    topic = models.CharField(max_length=60, blank=True)
    # A per-event key so that a redelivered task never texts the patient twice.
    dedupe_key = models.CharField(max_length=120, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class AdminAlert(models.Model):
    """Something an administrator must look at (a screening that failed for good, a kiosk jam)."""

    kind = models.CharField(max_length=60)
    message = models.TextField()
    object_ref = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open alert per (kind, object): a retried failure does not pile up alerts.
            models.UniqueConstraint(
                fields=["kind", "object_ref"],
                condition=models.Q(resolved_at__isnull=True),
                name="one_open_alert_per_object",
            )
        ]
