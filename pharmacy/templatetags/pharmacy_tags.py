"""``{% load pharmacy_tags %}{% pharmacy_panel screening %}`` on the health worker's screening page."""

from __future__ import annotations

from django import template

from accounts.models import Role
from pharmacy import codes, selectors
from pharmacy.models import Prescription
from screening.models import Screening, Symptom

register = template.Library()


@register.inclusion_tag("pharmacy/panel.html", takes_context=True)
def pharmacy_panel(context: template.Context, screening: Screening) -> dict:
    """The screening's prescriptions (status, items) and, once approved, the pickup code for the
    health worker to tell the patient. Two queries, whatever the number of prescriptions."""
    user = context["request"].user
    prescriptions = selectors.prescriptions_for_screening(user=user, screening=screening)
    for p in prescriptions:
        code_row = getattr(p, "dispense_code", None)
        usable = (
            p.status == Prescription.Status.APPROVED
            and code_row is not None
            and code_row.revoked_at is None
        )
        # Scoping already limits the rows to the health worker's own site (or the pharmacy).
        p.code = codes.format_code(codes.code_from_salt(code_row.salt)) if usable else None
    return {
        "prescriptions": prescriptions,
        "screening": screening,
        "can_request": getattr(user, "role", "") == Role.HEALTH_WORKER and screening.is_finished,
    }


@register.filter
def symptom_labels(values: list[str] | None) -> list[str]:
    labels = dict(Symptom.choices)
    return [str(labels.get(v, v)) for v in values or []]


@register.filter
def rx_status(value: str) -> str:
    """A prescription status value as its translated label (audit rows store the raw value)."""
    return str(dict(Prescription.Status.choices).get(value, value or "—"))
