"""The stock ledger: boxes received into a kiosk slot, and a pharmacist's corrections and
write-offs. Every change of a lot's quantity is a StockMovement row, so the ledger always sums to
the count."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from accounts.models import User
from config.errors import Conflict, InvalidInput, NotFound
from pharmacy.models import Kiosk, Medication, StockLot, StockMovement
from pharmacy.services._common import _require_pharmacist


def stock_lot_receive(
    *,
    kiosk: Kiosk,
    slot: str,
    medication: Medication,
    lot_number: str,
    expiry: dt.date,
    quantity: int,
    actor: User | None = None,
) -> StockLot:
    """Put boxes of a lot into a kiosk slot (a new lot row, or more of an existing one).

    A slot is one spiral of one product: it refuses a second medication while it holds boxes, and
    a lot number keeps the expiry date it was first received with. Takes the kiosk row lock, so
    two receipts for the same kiosk cannot both pass the slot check."""
    if quantity < 1 or quantity > 10_000:
        raise InvalidInput(
            _("Quantity must be between 1 and 10000."), code="invalid_quantity", field="quantity"
        )
    with transaction.atomic():
        list(Kiosk.objects.select_for_update().filter(pk=kiosk.pk).values_list("pk", flat=True))
        occupied = (
            StockLot.objects.filter(kiosk=kiosk, slot=slot, quantity__gt=0)
            .exclude(medication=medication)
            .exists()
        )
        if occupied:
            raise Conflict(
                _("Slot %(slot)s holds another medication; empty it first.") % {"slot": slot},
                code="slot_occupied",
            )
        lot, created = StockLot.objects.select_for_update().get_or_create(
            kiosk=kiosk,
            slot=slot,
            medication=medication,
            lot_number=lot_number,
            defaults={"expiry": expiry, "quantity": 0},
        )
        if not created and lot.expiry != expiry:
            raise Conflict(
                _("Lot %(lot)s was received with expiry %(date)s.")
                % {"lot": lot_number, "date": lot.expiry},
                code="lot_expiry_mismatch",
            )
        StockLot.objects.filter(pk=lot.pk).update(quantity=F("quantity") + quantity)
        StockMovement.objects.create(
            lot=lot, delta=quantity, reason=StockMovement.Reason.RECEIVE, actor=actor
        )
        lot.refresh_from_db()
    return lot


def stock_adjust(*, user: User, lot_id: int, delta: int, reason: str, note: str = "") -> StockLot:
    """A pharmacist corrects a lot's count or writes boxes off. The CHECK constraint and the
    conditional UPDATE refuse to go below zero."""
    pharmacy = _require_pharmacist(user)
    if reason not in {StockMovement.Reason.ADJUST, StockMovement.Reason.WRITE_OFF}:
        raise InvalidInput(_("Unknown reason."), code="invalid_reason", field="reason")
    if (
        delta == 0
        or abs(delta) > 10_000
        or (reason == StockMovement.Reason.WRITE_OFF and delta > 0)
    ):
        raise InvalidInput(_("Invalid quantity change."), code="invalid_quantity", field="delta")
    with transaction.atomic():
        lot = (
            StockLot.objects.select_for_update().filter(pk=lot_id, kiosk__pharmacy=pharmacy).first()
        )
        if lot is None:
            raise NotFound(_("Stock lot not found."), code="lot_not_found")
        if not StockLot.objects.filter(pk=lot.pk, quantity__gte=-delta).update(
            quantity=F("quantity") + delta
        ):
            raise Conflict(_("The lot does not hold that many boxes."), code="insufficient_stock")
        StockMovement.objects.create(
            lot=lot, delta=delta, reason=reason, actor=user, note=note[:200]
        )
        lot.refresh_from_db()
    return lot
