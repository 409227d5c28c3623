"""Pharmacy's part in screening's pages and access rules, registered from ``PharmacyConfig.ready``
through ``screening.extensions`` (screening never imports pharmacy)."""

from __future__ import annotations

from typing import Any, cast

from django.http import HttpRequest

from accounts.models import Role, User
from pharmacy import codes, selectors
from pharmacy.models import Prescription, PrescriptionEvent
from screening import extensions
from screening.models import Screening


def _cancel_notes(prescription_ids: list[int]) -> dict[int, str]:
    """Why each cancelled prescription was cancelled (its last cancelling event's note: the
    health worker's or pharmacist's reason, or the withdrawal after a grader's read). One query."""
    notes: dict[int, str] = {}
    events = PrescriptionEvent.objects.filter(
        prescription_id__in=prescription_ids, to_status=Prescription.Status.CANCELLED
    ).order_by("created_at", "id")
    for prescription_id, note in events.values_list("prescription_id", "note"):
        notes[prescription_id] = note
    return notes


def prescription_panel_context(*, request: HttpRequest, screening: Screening) -> dict[str, Any]:
    """The screening's prescriptions (status, items) and, once approved, the pickup code for the
    health worker to tell the patient; for a cancelled one, why. Two queries, whatever the number
    of prescriptions, and one more when any was cancelled."""
    # The panel renders on the result page, which is behind login_required.
    user = cast(User, request.user)
    prescriptions = selectors.prescriptions_for_screening(user=user, screening=screening)
    cancelled = [p.pk for p in prescriptions if p.status == Prescription.Status.CANCELLED]
    cancel_notes = _cancel_notes(cancelled) if cancelled else {}
    for p in prescriptions:
        p.cancel_note = cancel_notes.get(p.pk, "")  # type: ignore[attr-defined]  # panel only
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
