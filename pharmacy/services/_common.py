"""Helpers shared by the pharmacy services (not part of the package's interface)."""

from __future__ import annotations

from django.utils.translation import gettext as _

from accounts.models import User
from config.errors import Forbidden
from pharmacy.models import Kiosk, Pharmacy, Prescription, PrescriptionEvent
from pharmacy.selectors import pharmacy_for_user


def _event(
    prescription: Prescription,
    *,
    from_status: str,
    actor: User | None = None,
    kiosk: Kiosk | None = None,
    note: str = "",
) -> PrescriptionEvent:
    return PrescriptionEvent.objects.create(
        prescription=prescription,
        from_status=from_status,
        to_status=prescription.status,
        actor=actor,
        kiosk=kiosk,
        note=note,
    )


def _require_pharmacist(user: User) -> Pharmacy:
    pharmacy = pharmacy_for_user(user=user)
    if pharmacy is None:
        raise Forbidden(_("Only a pharmacist of a pharmacy may do this."), code="not_pharmacist")
    return pharmacy
