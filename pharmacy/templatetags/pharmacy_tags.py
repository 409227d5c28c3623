"""Filters for pharmacy's own pages (the screening page's prescription panel is registered
through ``screening.extensions``; see ``pharmacy.screening_hooks``)."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

from pharmacy.models import Prescription, PrescriptionEvent
from screening.models import Symptom

register = template.Library()


@register.filter
def symptom_labels(values: list[str] | None) -> list[str]:
    labels = dict(Symptom.choices)
    return [str(labels.get(v, v)) for v in values or []]


@register.filter
def rx_status(value: str) -> str:
    """A prescription status value as its translated label (audit rows store the raw value)."""
    return str(dict(Prescription.Status.choices).get(value, value or "—"))


@register.filter
def rx_note(value: str) -> str:
    """A prescription event's note: the platform's own notes (stored as stable keys) translated,
    a person's note as written."""
    if value in PrescriptionEvent.SystemNote.values:
        return str(PrescriptionEvent.SystemNote(value).label)
    dispense = PrescriptionEvent.DISPENSE_NOTE.match(value)
    if dispense:
        return _("Dispensed at the kiosk (dispense %(id)s)") % {"id": dispense.group(1)}
    return value
