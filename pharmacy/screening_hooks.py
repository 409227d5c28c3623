"""Pharmacy's part in screening's pages and access rules, registered from ``PharmacyConfig.ready``
through ``screening.extensions`` (screening never imports pharmacy)."""

from __future__ import annotations

from typing import Any, cast

from django.http import HttpRequest

from accounts.models import Role, User
from pharmacy import codes, selectors
from pharmacy.models import Prescription
from screening import extensions
from screening.models import Screening


def prescription_panel_context(*, request: HttpRequest, screening: Screening) -> dict[str, Any]:
    """The screening's prescriptions (status, items) and, once approved, the pickup code for the
    health worker to tell the patient. Two queries, whatever the number of prescriptions."""
    # The panel renders on the result page, which is behind login_required.
    user = cast(User, request.user)
    prescriptions = selectors.prescriptions_for_screening(user=user, screening=screening)
    for p in prescriptions:
        code_row = getattr(p, "dispense_code", None)
        code = None
        if (
            p.status == Prescription.Status.APPROVED
            and code_row is not None
            and code_row.revoked_at is None
        ):
            # Scoping already limits the rows to the health worker's own site (or the pharmacy).
            code = codes.format_code(codes.code_from_salt(code_row.salt))
        p.code = code  # type: ignore[attr-defined]  # for pharmacy/panel.html only, never saved
    return {
        "prescriptions": prescriptions,
        "screening": screening,
        "can_request": getattr(user, "role", "") == Role.HEALTH_WORKER and screening.is_finished,
    }


def register() -> None:
    extensions.register_viewer(
        role=Role.PHARMACIST, check=selectors.pharmacist_can_view_screening, key="pharmacy"
    )
    extensions.register_panel(
        extensions.Panel(
            key="pharmacy",
            template_name="pharmacy/panel.html",
            context=prescription_panel_context,
            order=10,
        )
    )
