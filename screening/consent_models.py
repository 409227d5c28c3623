"""The patient's consent: the versioned texts and the append-only history (screening.consent
holds the rules). A module of its own so that screening.models stays one room."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from screening.models import Patient


class ConsentText(models.Model):
    """One version of the consent text a patient agrees to, in both languages. A text in use is
    never edited: a change is a new version, so every patient's record names what they read."""

    version = models.CharField(_("version"), max_length=20, unique=True)
    text_ko = models.TextField(_("text (Korean)"))
    text_en = models.TextField(_("text (English)"))
    effective_from = models.DateTimeField(_("in use from"), default=timezone.now)

    class Meta:
        ordering = ["-effective_from"]
        verbose_name = _("consent text")
        verbose_name_plural = _("consent texts")

    def __str__(self) -> str:
        return self.version

    def text(self, language: str | None) -> str:
        return self.text_ko if (language or "ko").startswith("ko") else self.text_en


class ConsentEvent(models.Model):
    """The patient's consent history, append-only: given (with the text), withdrawn, erased."""

    class Action(models.TextChoices):
        GIVEN = "given", _("Consent given")
        WITHDRAWN = "withdrawn", _("Consent withdrawn")
        ERASED = "erased", _("Record erased")

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="consent_events", verbose_name=_("patient")
    )
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    text = models.ForeignKey(
        ConsentText,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("consent text"),
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        ordering = ["recorded_at", "id"]
        verbose_name = _("consent event")
        verbose_name_plural = _("consent events")
        constraints = [
            # A consent names the text that was agreed to.
            models.CheckConstraint(
                condition=~Q(action="given") | Q(text__isnull=False), name="consent_given_has_text"
            ),
            # Withdrawn and erased happen once per patient.
            models.UniqueConstraint(
                fields=["patient", "action"],
                condition=Q(action__in=["withdrawn", "erased"]),
                name="consent_withdrawn_or_erased_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} · {self.recorded_at:%Y-%m-%d}"
