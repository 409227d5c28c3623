"""Dispensing at a kiosk: reserve the stock for a presented code, record the patient's
confirmation of the guidance, complete or fail the release, and give back reservations that a
kiosk abandoned.

The kiosk-facing services return a ``KioskDispense``: the dispense and its items as the kiosk
sees them, ready for ``pharmacy.apis.DispenseOutput`` to render.

Locking rule (see the package docstring): prescription row -> dispense row -> stock lots (in
primary-key order)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AdminAlert, User
from config.errors import Conflict, InvalidInput, NotFound
from pharmacy import codes
from pharmacy.models import (
    Dispense,
    DispenseCode,
    DispenseLine,
    Kiosk,
    PharmacyAlert,
    Prescription,
    PrescriptionEvent,
    PrescriptionItem,
    StockLot,
    StockMovement,
)
from pharmacy.services._common import _event, _require_pharmacist
from pharmacy.services.code_caps import _count_presentation, _kiosk_check_rate


@dataclass(frozen=True)
class KioskDispenseItem:
    """One line of a dispense: how many boxes of which lot to release from which slot."""

    medication_id: int
    code: str
    name_ko: str
    name_en: str
    strength: str
    slot: str
    lot_number: str
    expiry: dt.date
    quantity: int


@dataclass(frozen=True)
class KioskDispense:
    """A dispense as the kiosk sees it: its items, and the guidance the patient must confirm."""

    id: int
    status: str
    prescription_id: int
    items: tuple[KioskDispenseItem, ...]
    counselling: dict[str, dict[str, str]] | None
    counselling_confirmed: bool
    created_at: dt.datetime
    completed_at: dt.datetime | None

    @property
    def pk(self) -> int:
        # As on a Dispense row: callers that only need the id read `.pk`.
        return self.id

    @classmethod
    def of(cls, dispense: Dispense, lines: Iterable[DispenseLine]) -> KioskDispense:
        """Built without a query: the dispense's prescription and each line's medication and lot
        must already be loaded."""
        return cls(
            id=dispense.pk,
            status=dispense.status,
            prescription_id=dispense.prescription_id,
            items=tuple(
                KioskDispenseItem(
                    medication_id=line.medication_id,
                    code=line.medication.code,
                    name_ko=line.medication.name_ko,
                    name_en=line.medication.name_en,
                    strength=line.medication.strength,
                    slot=line.slot,
                    lot_number=line.lot.lot_number,
                    expiry=line.lot.expiry,
                    quantity=line.quantity,
                )
                for line in lines
            ),
            counselling=dispense.prescription.counselling,
            counselling_confirmed=dispense.counselling_confirmed_at is not None,
            created_at=dispense.created_at,
            completed_at=dispense.completed_at,
        )


def _as_kiosk_sees_it(dispense: Dispense) -> KioskDispense:
    """One query, after the service's transaction: the lines with their medication and lot (the
    services have the prescription loaded already)."""
    lines = DispenseLine.objects.filter(dispense=dispense).select_related("medication", "lot")
    return KioskDispense.of(dispense, lines)


@dataclass
class _Allocation:
    lot: StockLot
    quantity: int


def _allocate(items: list[PrescriptionItem], lots: list[StockLot]) -> list[_Allocation]:
    """First expiry, first out, across the lots of each medication."""
    allocations: list[_Allocation] = []
    for item in items:
        needed = item.quantity
        candidates = sorted(
            (lot for lot in lots if lot.medication_id == item.medication_id),
            key=lambda lot: (lot.expiry, lot.pk),
        )
        for lot in candidates:
            if needed == 0:
                break
            take = min(needed, lot.quantity)
            if take > 0:
                allocations.append(_Allocation(lot, take))
                needed -= take
        if needed:
            raise Conflict(
                _("%(medication)s is out of stock at this kiosk.")
                % {"medication": item.medication.name_ko},
                code="out_of_stock",
                details={"medication_id": item.medication_id},
            )
    return allocations


def dispense_reserve(*, kiosk: Kiosk, code: Any, idempotency_key: str) -> KioskDispense:
    """A kiosk presents a code: reserve the stock for its prescription and return the dispense.

    Guarantees, each enforced by the database: a prescription has at most one reserved or
    completed dispense (row lock on the prescription + a partial unique constraint); no lot goes
    below zero (row locks on the lots + a conditional UPDATE + a CHECK constraint); an expired lot
    is never used; nothing outside the kiosk-dispensable formulary is released.
    Brute force: every presentation is counted before it is evaluated (``_count_presentation``):
    unknown codes against the kiosk, known ones against the code, each a conditional UPDATE
    committed on its own, so a refused request still counts and concurrent ones cannot pass a
    cap (429 ``kiosk_rate_limited`` / ``code_locked``)."""
    normalized = codes.normalize_code(code)
    if normalized is None:
        raise InvalidInput(
            _("A code is 8 letters and digits, e.g. ABCD-EFGH."),
            code="malformed_code",
            field="code",
        )
    now = timezone.now()
    _kiosk_check_rate(kiosk, now)
    hashed = codes.code_hash(normalized)
    _count_presentation(kiosk=kiosk, code_hash=hashed, now=now)
    return _reserve(kiosk=kiosk, code_hash=hashed, idempotency_key=idempotency_key, now=now)


def _reserve(
    *, kiosk: Kiosk, code_hash: str, idempotency_key: str, now: dt.datetime
) -> KioskDispense:
    with transaction.atomic():
        # One statement finds the code's prescription and locks it: the same code presented 50
        # times at once is served one at a time, and only the first gets past the checks below.
        prescription = (
            Prescription.objects.select_for_update(of=("self",))
            .select_related("dispense_code")
            .filter(dispense_code__code_hash=code_hash)
            .first()
        )
        if prescription is None or prescription.pharmacy_id != kiosk.pharmacy_id:
            # Counted and found known a moment ago; only a deleted prescription lands here.
            raise NotFound(_("Unknown code."), code="code_not_found")
        code_row = prescription.dispense_code
        status = prescription.status
        if status == Prescription.Status.CANCELLED or code_row.revoked_at is not None:
            raise Conflict(_("This prescription was cancelled."), code="prescription_cancelled")
        if status == Prescription.Status.DISPENSED or code_row.used_at is not None:
            raise Conflict(_("This code has already been used."), code="code_used")
        if status == Prescription.Status.EXPIRED or code_row.expires_at <= now:
            raise Conflict(_("This code has expired."), code="code_expired")
        if status != Prescription.Status.APPROVED:
            raise Conflict(_("This prescription is not approved."), code="not_approved")
        items = list(prescription.items.select_related("medication__category"))
        for item in items:
            if not item.medication.kiosk_dispensable:
                raise Conflict(
                    _("%(medication)s cannot be released by a kiosk; please see the pharmacist.")
                    % {"medication": item.medication.name_ko},
                    code="not_kiosk_dispensable",
                    details={"medication_id": item.medication_id},
                )
        try:
            # Before the lots are locked, so that a code already being released elsewhere fails
            # fast. The partial unique constraint is the check: a live dispense makes this INSERT
            # fail. No savepoint: the Conflict leaves (and rolls back) the transaction.
            dispense = Dispense.objects.create(
                kiosk=kiosk, prescription=prescription, idempotency_key=idempotency_key
            )
        except IntegrityError as exc:
            raise Conflict(
                _("This code is being used at a kiosk right now."), code="dispense_in_progress"
            ) from exc
        # Lock every candidate lot in primary-key order (the locking rule: no deadlock between two
        # prescriptions that share lots). A lot that expires today is already unusable.
        lots = list(
            StockLot.objects.select_for_update()
            .filter(
                kiosk=kiosk,
                medication_id__in=[i.medication_id for i in items],
                expiry__gt=timezone.localdate(now),
                quantity__gt=0,
            )
            .order_by("pk")
        )
        allocations = _allocate(items, lots)
        medications = {item.medication_id: item.medication for item in items}
        lines = []
        for allocation in allocations:
            lot = allocation.lot
            # Conditional UPDATE: even under the lock, never trust the in-memory quantity.
            taken = StockLot.objects.filter(pk=lot.pk, quantity__gte=allocation.quantity).update(
                quantity=F("quantity") - allocation.quantity
            )
            if not taken:
                raise Conflict(_("Out of stock at this kiosk."), code="out_of_stock")
            lines.append(
                DispenseLine(
                    dispense=dispense,
                    lot=lot,
                    medication=medications[lot.medication_id],
                    slot=lot.slot,
                    quantity=allocation.quantity,
                )
            )
        DispenseLine.objects.bulk_create(lines)
        StockMovement.objects.bulk_create(
            StockMovement(
                lot=a.lot, delta=-a.quantity, reason=StockMovement.Reason.RESERVE, dispense=dispense
            )
            for a in allocations
        )
    dispense.prescription = prescription
    # From the rows in memory: no second round of queries on the hot path.
    return KioskDispense.of(dispense, lines)


def _lock_dispense(dispense: Dispense) -> tuple[Prescription, Dispense]:
    prescription = Prescription.objects.select_for_update().get(pk=dispense.prescription_id)
    return prescription, Dispense.objects.select_for_update().get(pk=dispense.pk)


def _lock_kiosk_dispense(kiosk: Kiosk, dispense_id: int) -> tuple[Prescription, Dispense]:
    """Lock a kiosk's own dispense for a state change (call inside a transaction).

    Same locking rule as the reservation, prescription row first and then the dispense row, but
    the prescription is found through the dispense in the locking statement itself: two round
    trips on the kiosk's hot path instead of a read followed by two locks. A dispense of another
    kiosk is "not found"."""
    prescription = (
        Prescription.objects.select_for_update(of=("self",))
        .filter(dispenses__pk=dispense_id, dispenses__kiosk=kiosk)
        .first()
    )
    if prescription is None:
        raise NotFound(_("Dispense not found."), code="dispense_not_found")
    dispense = Dispense.objects.select_for_update().get(pk=dispense_id)
    dispense.prescription = prescription
    return prescription, dispense


def dispense_confirm_counselling(*, kiosk: Kiosk, dispense_id: int) -> KioskDispense:
    """Record that the patient read and confirmed the pharmacist's guidance on the kiosk screen.
    Nothing may be released before this. Repeating it is harmless.

    One conditional UPDATE and no explicit locks: it can only stamp a reserved, unconfirmed
    dispense of this kiosk, and the row lock it takes queues it behind a concurrent complete or
    fail (which hold this row), after which PostgreSQL re-checks the status condition. The read
    after it reports what the row is now."""
    Dispense.objects.filter(
        pk=dispense_id,
        kiosk=kiosk,
        status=Dispense.Status.RESERVED,
        counselling_confirmed_at__isnull=True,
    ).update(counselling_confirmed_at=timezone.now())
    dispense = (
        Dispense.objects.select_related("prescription").filter(pk=dispense_id, kiosk=kiosk).first()
    )
    if dispense is None:
        raise NotFound(_("Dispense not found."), code="dispense_not_found")
    if dispense.status != Dispense.Status.RESERVED:
        raise Conflict(_("This dispense is no longer open."), code="dispense_not_open")
    return _as_kiosk_sees_it(dispense)


def dispense_complete(*, kiosk: Kiosk, dispense_id: int) -> KioskDispense:
    """The kiosk released the items and the patient took them. Idempotent for a completed dispense."""
    with transaction.atomic():
        prescription, dispense = _lock_kiosk_dispense(kiosk, dispense_id)
        if dispense.status != Dispense.Status.COMPLETED:
            _complete(kiosk, prescription, dispense)
    return _as_kiosk_sees_it(dispense)


def _complete(kiosk: Kiosk, prescription: Prescription, dispense: Dispense) -> None:
    """Call holding the prescription's and the dispense's row locks."""
    if dispense.status != Dispense.Status.RESERVED:
        raise Conflict(_("This dispense failed; stock was restored."), code="dispense_not_open")
    if dispense.counselling_confirmed_at is None:
        raise Conflict(
            _("The patient has not confirmed the medication guidance."),
            code="counselling_not_confirmed",
        )
    now = timezone.now()
    dispense.status = Dispense.Status.COMPLETED
    dispense.completed_at = now
    dispense.save(update_fields=["status", "completed_at"])
    before = prescription.status
    prescription.status = Prescription.Status.DISPENSED
    prescription.save(update_fields=["status", "updated_at"])
    DispenseCode.objects.filter(prescription=prescription).update(used_at=now)
    _event(
        prescription,
        from_status=before,
        kiosk=kiosk,
        note=PrescriptionEvent.dispense_note(dispense.pk),
    )


def _restore(dispense: Dispense, *, reason: str, now: dt.datetime) -> None:
    """Put a reserved dispense's boxes back (call holding the dispense's row lock)."""
    lines = list(dispense.lines.order_by("lot_id"))
    dispense.status = Dispense.Status.FAILED
    dispense.failed_at = now
    dispense.failure_reason = reason[:200]
    dispense.save(update_fields=["status", "failed_at", "failure_reason"])
    for line in lines:  # lot-id order: the locking rule
        StockLot.objects.filter(pk=line.lot_id).update(quantity=F("quantity") + line.quantity)
    StockMovement.objects.bulk_create(
        StockMovement(
            lot_id=line.lot_id,
            delta=line.quantity,
            reason=StockMovement.Reason.RESTORE,
            dispense=dispense,
            note=reason[:200],
        )
        for line in lines
    )


def _alert_pharmacist(dispense: Dispense, kiosk: Kiosk, reason: str) -> None:
    ref = f"dispense:{dispense.pk}"
    message = _(
        "Kiosk %(kiosk)s could not release dispense %(id)s (%(reason)s). Stock was restored; "
        "the patient's code still works."
    ) % {"kiosk": kiosk.name, "id": dispense.pk, "reason": reason}
    for model, fields in (
        (PharmacyAlert, {"pharmacy_id": kiosk.pharmacy_id, "kiosk": kiosk}),
        (AdminAlert, {}),
    ):
        try:
            with transaction.atomic():
                model.objects.create(
                    kind=PharmacyAlert.Kind.DISPENSE_FAILED,
                    object_ref=ref,
                    message=message,
                    **fields,
                )
        except IntegrityError:
            pass  # one open alert per dispense already exists


def dispense_fail(*, kiosk: Kiosk, dispense_id: int, reason: str) -> KioskDispense:
    """The kiosk could not release (a jam): stock goes back, the pharmacist is alerted, and the
    prescription stays approved so the patient can try again. Idempotent for a failed dispense."""
    with transaction.atomic():
        _prescription, dispense = _lock_kiosk_dispense(kiosk, dispense_id)
        if dispense.status != Dispense.Status.FAILED:
            if dispense.status != Dispense.Status.RESERVED:
                raise Conflict(_("This dispense was completed."), code="dispense_not_open")
            _restore(dispense, reason=reason or "failed", now=timezone.now())
            _alert_pharmacist(dispense, kiosk, reason or "failed")
    return _as_kiosk_sees_it(dispense)


def dispenses_release_stale(*, now: dt.datetime | None = None) -> int:
    """Reservations that a kiosk never completed nor failed (it crashed, lost its network) give
    their stock back after PHARMACY_RESERVATION_TIMEOUT_SECONDS. Each is handled under its locks,
    so a late "complete" and this sweep cannot both win."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.PHARMACY_RESERVATION_TIMEOUT_SECONDS)
    released = 0
    for dispense in Dispense.objects.filter(status=Dispense.Status.RESERVED, created_at__lt=cutoff):
        with transaction.atomic():
            _prescription, locked = _lock_dispense(dispense)
            if locked.status != Dispense.Status.RESERVED:
                continue
            _restore(locked, reason="timeout", now=now)
            released += 1
    return released


def pharmacy_alert_resolve(*, user: User, alert_id: int) -> None:
    pharmacy = _require_pharmacist(user)
    updated = PharmacyAlert.objects.filter(
        pk=alert_id, pharmacy=pharmacy, resolved_at__isnull=True
    ).update(resolved_at=timezone.now(), resolved_by=user)
    if not updated and not PharmacyAlert.objects.filter(pk=alert_id, pharmacy=pharmacy).exists():
        raise NotFound(_("Alert not found."), code="alert_not_found")
