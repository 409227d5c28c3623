"""A small hand-built world whose every dashboard figure is known.

Range used by the tests: 2026-03-02 (Monday) .. 2026-03-15 (Sunday), Asia/Seoul.

Sites: A and B in Seoul, C in Gangwon.

    screening  site  local time         status      triage      images (L, R gradable)  results (L, R findings)
    s1         A     03-02 00:30        completed   normal      T, T                    [N], [N]
    s2         A     03-02 15:00        completed   referable   T, F                    [D], [D, H]
    s3         A     03-10 09:00        completed   urgent      T, -                    [G], -
    s4         B     03-03 11:00        completed   medication  T, T                    [C], [N]
    s5         B     03-09 10:00        ungradable  ungradable  F, F                    -
    s6         B     03-09 12:00        queued      (none)      -                       -
    s7         C     03-04 10:00        completed   referable   T, -                    [A, D], -
    s9         C     03-15 23:30        completed   normal      -                       -
    excluded:  d1 (B, 03-09, draft), s0 (A, 03-01 23:30: the day before, though 03-01 14:30 UTC
               and 03-02 is only 9 hours later), s8 (C, 02-20).

Referrals (events at t0 = the screening's time):
    r1 on s2: proposed t0, sent +1h, accepted +11h (10h wait), attended, completed.
    r2 on s3: sent t0, declined +2h, sent +5h, accepted +30h (30h wait).        status accepted
    r3 on s7: proposed, cancelled.                                              status cancelled
    r4 on s4: sent t0, accepted +60h (60h wait), no_show.                       status no_show
    r8 on s8 (out of range): sent, accepted.

Pharmacy: P1 (Seoul, serves A) kiosk K1: lots 5 (unexpired) + 7 (expired); dispenses in range
2 completed + 1 failed, 1 completed before the range. P2 (Gangwon, serves C) kiosk K2: lot 2,
1 completed dispense in range.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from pharmacy.models import Dispense, Kiosk, Pharmacy, PharmacySiteLink, Prescription, StockLot
from referrals.models import Referral, ReferralEvent, ReferralStatus
from screening.models import EyeResult, Screening, ScreeningImage
from tests.factories import PatientFactory, ScreeningFactory, SiteFactory
from tests.pharmacy.factories import MedicationFactory
from tests.referrals.factories import HospitalFactory

SEOUL = ZoneInfo("Asia/Seoul")
DATE_FROM = dt.date(2026, 3, 2)
DATE_TO = dt.date(2026, 3, 15)
RANGE = {"date_from": "2026-03-02", "date_to": "2026-03-15"}


def at(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=SEOUL)


def _screening(
    site, when, *, status="completed", triage="normal", findings=(), images=(), results=()
):
    s = ScreeningFactory(
        patient=PatientFactory(site=site), status=status, triage=triage, findings=list(findings)
    )
    Screening.objects.filter(pk=s.pk).update(created_at=when)
    for eye, gradable in zip(("left", "right"), images, strict=False):
        if gradable is not None:
            ScreeningImage.objects.create(
                screening=s,
                eye=eye,
                path=f"x/{s.pk}-{eye}.jpg",
                sha256="0" * 64,
                width=10,
                height=10,
                gradable=gradable,
            )
    for eye, letters in zip(("left", "right"), results, strict=False):
        if letters is not None:
            EyeResult.objects.create(
                screening=s,
                eye=eye,
                probabilities={},
                top_class=letters[0],
                findings=list(letters),
                model_version="test",
            )
    s.refresh_from_db()
    return s


def _referral(screening, status, events, **fields):
    """events: [(to_status, hours after the screening)]."""
    S = ReferralStatus
    extra = {}
    if status in (S.ACCEPTED, S.ATTENDED, S.NO_SHOW, S.COMPLETED):
        extra["appointment_at"] = screening.created_at + dt.timedelta(days=7)
    if status == S.COMPLETED:
        extra["diagnosis"] = "DR"
    hospital = None if status in (S.PROPOSED, S.CANCELLED) else HospitalFactory()
    referral = Referral.objects.create(
        screening=screening, status=status, hospital=hospital, urgency="routine", **extra, **fields
    )
    previous = ""
    for to_status, hours in events:
        event = ReferralEvent.objects.create(
            referral=referral,
            kind=to_status,
            from_status=previous,
            to_status=to_status,
            hospital=hospital,
        )
        ReferralEvent.objects.filter(pk=event.pk).update(
            created_at=screening.created_at + dt.timedelta(hours=hours)
        )
        previous = to_status
    return referral


def _dispense(kiosk, screening, status, when):
    rx = Prescription.objects.create(
        pharmacy=kiosk.pharmacy, patient=screening.patient, screening=screening, source="user"
    )
    d = Dispense.objects.create(
        kiosk=kiosk,
        prescription=rx,
        status=status,
        idempotency_key=f"k-{rx.pk}",
        counselling_confirmed_at=when if status == "completed" else None,
    )
    Dispense.objects.filter(pk=d.pk).update(created_at=when)
    return d


@pytest.fixture
def world(db):
    a = SiteFactory(name="A site", region="Seoul")
    b = SiteFactory(name="B site", region="Seoul")
    c = SiteFactory(name="C site", region="Gangwon")
    s = SimpleNamespace(site_a=a, site_b=b, site_c=c)
    s.s1 = _screening(
        a, at(3, 2, 0, 30), triage="normal", images=(True, True), results=(["N"], ["N"])
    )
    s.s2 = _screening(
        a,
        at(3, 2, 15),
        triage="referable",
        findings=["D", "H"],
        images=(True, False),
        results=(["D"], ["D", "H"]),
    )
    s.s3 = _screening(
        a, at(3, 10, 9), triage="urgent", findings=["G"], images=(True,), results=(["G"],)
    )
    s.s4 = _screening(
        b,
        at(3, 3, 11),
        triage="medication",
        findings=["C"],
        images=(True, True),
        results=(["C"], ["N"]),
    )
    s.s5 = _screening(
        b, at(3, 9, 10), status="ungradable", triage="ungradable", images=(False, False)
    )
    s.s6 = _screening(b, at(3, 9, 12), status="queued", triage="")
    s.s7 = _screening(
        c,
        at(3, 4, 10),
        triage="referable",
        findings=["A", "D"],
        images=(True,),
        results=(["A", "D"],),
    )
    s.s9 = _screening(c, at(3, 15, 23, 30), triage="normal")
    s.d1 = _screening(
        b, at(3, 9, 13), status="draft", triage="", images=(True, True), results=(["D"], ["D"])
    )
    s.s0 = _screening(
        a, at(3, 1, 23, 30), triage="urgent", findings=["D"], images=(True,), results=(["D"],)
    )
    s.s8 = _screening(c, at(2, 20, 10), triage="referable", images=(True,), results=(["D"],))

    S = ReferralStatus
    s.r1 = _referral(
        s.s2,
        S.COMPLETED,
        [("proposed", 0), ("sent", 1), ("accepted", 11), ("attended", 100), ("completed", 101)],
    )
    s.r2 = _referral(
        s.s3, S.ACCEPTED, [("sent", 0), ("declined", 2), ("sent", 5), ("accepted", 30)]
    )
    s.r3 = _referral(s.s7, S.CANCELLED, [("proposed", 0), ("cancelled", 3)])
    s.r4 = _referral(s.s4, S.NO_SHOW, [("sent", 0), ("accepted", 60), ("no_show", 200)])
    s.r8 = _referral(s.s8, S.ACCEPTED, [("sent", 0), ("accepted", 1)])

    p1 = Pharmacy.objects.create(name="P1", region="Seoul")
    p2 = Pharmacy.objects.create(name="P2", region="Gangwon")
    PharmacySiteLink.objects.create(pharmacy=p1, site=a)
    PharmacySiteLink.objects.create(pharmacy=p2, site=c)
    s.k1 = Kiosk.objects.create(
        pharmacy=p1, kiosk_id="K1", name="=HYPERLINK(evil)", secret_hash="x"
    )
    s.k2 = Kiosk.objects.create(pharmacy=p2, kiosk_id="K2", name="Kiosk two", secret_hash="x")
    med = MedicationFactory()
    today = dt.date.today()
    StockLot.objects.create(
        kiosk=s.k1,
        slot="A1",
        medication=med,
        lot_number="L1",
        expiry=today + dt.timedelta(days=200),
        quantity=5,
    )
    StockLot.objects.create(
        kiosk=s.k1,
        slot="A2",
        medication=med,
        lot_number="L2",
        expiry=today - dt.timedelta(days=1),
        quantity=7,
    )
    StockLot.objects.create(
        kiosk=s.k2,
        slot="A1",
        medication=med,
        lot_number="L3",
        expiry=today + dt.timedelta(days=200),
        quantity=2,
    )
    _dispense(s.k1, s.s1, "completed", at(3, 3, 10))
    _dispense(s.k1, s.s1, "failed", at(3, 3, 11))
    _dispense(s.k1, s.s4, "completed", at(3, 12, 10))
    _dispense(s.k1, s.s0, "completed", at(2, 25, 10))
    _dispense(s.k2, s.s9, "completed", at(3, 5, 10))
    return s
