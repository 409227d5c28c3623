"""Pharmacies, the screening sites they serve, their pharmacists and their kiosks.

Invariants live in the database (each constraint says which race or bug it stops); the rules
that decide when a row may change live in pharmacy.services.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from screening.models import Site


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
