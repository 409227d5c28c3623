"""The formulary: what a kiosk may hold, and which findings or symptoms each product treats.

Invariants live in the database (each constraint says which race or bug it stops); the rules
that decide when a row may change live in pharmacy.services.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from screening.models import Symptom


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
