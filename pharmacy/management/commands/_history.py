"""The pharmacy's part of the demo history: what became of the past screenings' medicine.

Run as ``manage.py seed_demo_pharmacy --history``, after screening's ``seed_demo_history``. For
each past screening the protocol proposes medicine for (the protocol table decides, through
prescription_propose_for_screening), the pharmacist decided within hours: most were approved
and picked up at the patient's nearest kiosk of the pharmacy a day or two later, a few rejected,
a few never collected (expired), and a few kiosks jammed once before releasing. Each step stops
at now: a screening of yesterday may still wait for the pharmacist or for its pickup.

Written with the ORM, with the stamps of when it happened, and without sending anything (no
pickup text). The boxes come from a lot received for the purpose, so the stock ledger still adds
up (reconcile_stock). Idempotent: a screening that has its prescription is left alone.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass, field

from django.core.management.base import CommandError
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from pharmacy import codes, services
from pharmacy.forms import ApproveForm
from pharmacy.management.commands.seed_demo_pharmacy import SLOTS
from pharmacy.models import (
    Dispense,
    DispenseCode,
    DispenseLine,
    Kiosk,
    Medication,
    Prescription,
    PrescriptionEvent,
    StockLot,
    StockMovement,
)
from pharmacy.services._common import _event as record_event
from pharmacy.services.prescriptions import PROPOSABLE_TRIAGE
from screening.management.commands.seed_demo_history import HISTORY_MODEL_VERSION
from screening.models import Screening
from screening.regions import distance_km

PICKUP_WINDOW = dt.timedelta(hours=72)
REJECTIONS = (
    "증상이 2주 넘게 계속되어 안과 진료가 먼저입니다. / Symptoms for over two weeks: an eye "
    "doctor should see this first.",
    "같은 약을 이미 쓰고 있습니다. / Already using the same medicine.",
)
_S = Prescription.Status


@dataclass
class _Release:
    """One kiosk release: the prescription's items taken from the history lots."""

    prescription: Prescription
    kiosk: Kiosk
    at: dt.datetime
    failed: bool
    lines: list[tuple[int, int]] = field(default_factory=list)  # (medication id, quantity)


def seed_history(*, now: dt.datetime | None = None) -> str:
    now = now or timezone.now()
    pharmacist = User.objects.filter(username="pharmacist").first()
    if pharmacist is None:
        raise CommandError("run seed_demo_pharmacy first: there is no pharmacist")
    ruled = Prescription.objects.filter(source=Prescription.Source.RULE).values("screening_id")
    screenings = list(
        Screening.objects.filter(
            model_version=HISTORY_MODEL_VERSION,
            status=Screening.Status.COMPLETED,
            triage__in=PROPOSABLE_TRIAGE,
        )
        .exclude(pk__in=ruled)
        .select_related("patient", "site")
        .order_by("created_at", "pk")
    )
    added = 0
    with transaction.atomic():
        releases: list[_Release] = []
        for screening in screenings:
            prescription = services.prescription_propose_for_screening(screening_id=screening.pk)
            if prescription is not None:
                added += 1
                releases += _decide(prescription, screening, pharmacist, now)
        _release(releases, now)
    dispensed = sum(not r.failed for r in releases)
    return f"History: {added} past prescriptions added, {dispensed} dispensed at the kiosks."


def _stamp(model: type[models.Model], pk: int, at: dt.datetime) -> None:
    """Set the time it happened (auto_now_add stamped the row now)."""
    model._default_manager.filter(pk=pk).update(created_at=at)


def _event(
    prescription: Prescription,
    *,
    from_status: str,
    at: dt.datetime,
    actor: User | None = None,
    kiosk: Kiosk | None = None,
    note: str = "",
) -> None:
    """The service's event row, stamped at the time it happened in the history."""
    event = record_event(prescription, from_status=from_status, actor=actor, kiosk=kiosk, note=note)
    _stamp(PrescriptionEvent, event.pk, at)


def _decide(
    prescription: Prescription, screening: Screening, pharmacist: User, now: dt.datetime
) -> list[_Release]:
    """Decide a proposed prescription as the pharmacist did; the releases it led to."""
    rng = random.Random(screening.study_instance_uid)
    proposed = (screening.completed_at or screening.created_at) + dt.timedelta(seconds=30)
    _stamp(Prescription, prescription.pk, proposed)
    PrescriptionEvent.objects.filter(prescription=prescription).update(created_at=proposed)
    decided = proposed + dt.timedelta(minutes=rng.randint(20, 300))
    if decided > now:
        return []  # still in the pharmacist's queue
    fields = {"decided_by": pharmacist, "decided_at": decided, "updated_at": decided}
    if rng.random() < 0.08:
        note = rng.choice(REJECTIONS)
        Prescription.objects.filter(pk=prescription.pk).update(
            status=_S.REJECTED, decision_note=note, **fields
        )
        prescription.status = _S.REJECTED
        _event(
            prescription, from_status=_S.PENDING_APPROVAL, at=decided, actor=pharmacist, note=note
        )
        return []
    initial = ApproveForm.initial_for(prescription)
    counselling = {
        lang: {f: initial[f"{f}_{lang}"] for f in ("dose", "frequency", "duration", "warnings")}
        for lang in ("ko", "en")
    }
    expires = decided + PICKUP_WINDOW
    Prescription.objects.filter(pk=prescription.pk).update(
        status=_S.APPROVED, counselling=counselling, pickup_expires_at=expires, **fields
    )
    prescription.status = _S.APPROVED
    salt = codes.new_salt()
    code = DispenseCode.objects.create(
        prescription=prescription,
        salt=salt,
        code_hash=codes.code_hash(codes.code_from_salt(salt)),
        expires_at=expires,
    )
    _stamp(DispenseCode, code.pk, decided)
    _event(prescription, from_status=_S.PENDING_APPROVAL, at=decided, actor=pharmacist)
    pickup = decided + dt.timedelta(hours=rng.uniform(1, 60))
    if rng.random() < 0.1 or pickup >= expires:  # never collected
        if expires <= now:
            Prescription.objects.filter(pk=prescription.pk).update(
                status=_S.EXPIRED, updated_at=expires
            )
            prescription.status = _S.EXPIRED
            _event(
                prescription,
                from_status=_S.APPROVED,
                at=expires,
                note=PrescriptionEvent.SystemNote.PICKUP_EXPIRED,
            )
        return []
    if pickup > now:
        return []  # the code is still live
    kiosk = _nearest_kiosk(prescription, screening)
    if kiosk is None:
        return []
    releases = []
    if rng.random() < 0.06:  # the kiosk jammed once; the patient tried again
        releases.append(_Release(prescription, kiosk, pickup, failed=True))
        pickup += dt.timedelta(minutes=rng.randint(3, 30))
    releases.append(_Release(prescription, kiosk, pickup, failed=False))
    items = list(prescription.items.values_list("medication_id", "quantity"))
    for release in releases:
        release.lines = items
    return releases


def _nearest_kiosk(prescription: Prescription, screening: Screening) -> Kiosk | None:
    """The pharmacy's active kiosk nearest the patient's home (or the site)."""
    kiosks = list(
        Kiosk.objects.filter(
            pharmacy_id=prescription.pharmacy_id, status=Kiosk.Status.ACTIVE
        ).order_by("kiosk_id")
    )
    site = screening.site
    home = screening.patient.home_coordinates
    if home is None and site.latitude is not None and site.longitude is not None:
        home = (site.latitude, site.longitude)
    if home is None:
        return kiosks[0] if kiosks else None
    lat, lon = home

    def away(kiosk: Kiosk) -> float:
        if kiosk.latitude is None or kiosk.longitude is None:
            return float("inf")
        return distance_km(lat, lon, kiosk.latitude, kiosk.longitude)

    return min(kiosks, key=away, default=None)


def _release(releases: list[_Release], now: dt.datetime) -> None:
    """The kiosk releases, from one history lot per kiosk and medication: received for exactly
    what was released, so the lot ends empty and its movements add up."""
    if not releases:
        return
    slot_of = {med: slot for slot, med, _q, _d in SLOTS}
    needed: dict[tuple[int, int], int] = defaultdict(int)
    for release in releases:
        for medication_id, quantity in release.lines:
            # A jammed release puts its boxes back: only what was taken is received.
            needed[(release.kiosk.pk, medication_id)] += 0 if release.failed else quantity
    medications = Medication.objects.in_bulk({m for _k, m in needed})
    kiosks = {r.kiosk.pk: r.kiosk for r in releases}
    first = min(r.at for r in releases) - dt.timedelta(days=1)
    lots: dict[tuple[int, int], StockLot] = {}
    for (kiosk_pk, medication_id), quantity in needed.items():
        kiosk, medication = kiosks[kiosk_pk], medications[medication_id]
        slot = slot_of.get(medication.code, "H1")
        lot = services.stock_lot_receive(
            kiosk=kiosk,
            slot=slot,
            medication=medication,
            lot_number=f"H{kiosk.kiosk_id[-1]}{slot}-{timezone.localdate(now):%Y%m%d}",
            expiry=timezone.localdate(now) + dt.timedelta(days=180),
            quantity=quantity,
        )
        StockMovement.objects.filter(lot=lot).update(created_at=first)
        StockLot.objects.filter(pk=lot.pk).update(created_at=first)
        lots[(kiosk_pk, medication_id)] = lot
    taken: dict[int, int] = defaultdict(int)
    for release in releases:
        _one_release(release, lots, taken)
    for lot_pk, quantity in taken.items():
        StockLot.objects.filter(pk=lot_pk).update(quantity=F("quantity") - quantity)


def _one_release(
    release: _Release, lots: dict[tuple[int, int], StockLot], taken: dict[int, int]
) -> None:
    prescription, at = release.prescription, release.at
    confirmed = at + dt.timedelta(seconds=50)
    finished = confirmed + dt.timedelta(seconds=25)
    dispense = Dispense.objects.create(
        kiosk=release.kiosk,
        prescription=prescription,
        status=Dispense.Status.FAILED if release.failed else Dispense.Status.COMPLETED,
        idempotency_key=f"demo-history-{prescription.pk}-{int(at.timestamp())}",
        counselling_confirmed_at=confirmed,
        completed_at=None if release.failed else finished,
        failed_at=finished if release.failed else None,
        failure_reason="jam (demo history)" if release.failed else "",
    )
    _stamp(Dispense, dispense.pk, at)
    for medication_id, quantity in release.lines:
        lot = lots[(release.kiosk.pk, medication_id)]
        DispenseLine.objects.create(
            dispense=dispense,
            lot=lot,
            medication_id=medication_id,
            slot=lot.slot,
            quantity=quantity,
        )
        moves = [(-quantity, StockMovement.Reason.RESERVE, at)]
        if release.failed:
            moves.append((quantity, StockMovement.Reason.RESTORE, finished))
        else:
            taken[lot.pk] += quantity
        for delta, reason, when in moves:
            move = StockMovement.objects.create(
                lot=lot, delta=delta, reason=reason, dispense=dispense
            )
            _stamp(StockMovement, move.pk, when)
    if release.failed:
        return
    Prescription.objects.filter(pk=prescription.pk).update(status=_S.DISPENSED, updated_at=finished)
    DispenseCode.objects.filter(prescription=prescription).update(used_at=finished)
    prescription.status = _S.DISPENSED
    _event(prescription, from_status=_S.APPROVED, at=finished, kiosk=release.kiosk)
