"""The referrals' part of the demo history: what became of the past screenings' referrals.

Run as ``manage.py seed_demo_referrals --history``, after screening's ``seed_demo_history``. Each
past referable, urgent or ungradable screening got its proposal from the real ranking (the
hospitals as seeded now), and then a life like the ones the platform records: the health worker
sent it to the first candidate within hours; the hospital accepted within a day or two (sooner
when urgent) and booked an appointment, or declined and the health worker sent it to the next
candidate; the patient attended and the hospital recorded the diagnosis, or did not come. A
few were cancelled before sending. Each step stops at now, so the recent ones are still open:
proposed, sent, accepted with an appointment to come.

Written with the ORM, with the stamps of when it happened, and without texting anyone. Every
sent referral was answered well inside the escalation delay, so the beat's escalation finds
nothing to do. Idempotent: a screening that has a referral is left alone.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from referrals.models import HospitalStaffMembership, Referral, ReferralEvent, ReferralStatus
from referrals.services import REFERRABLE_TRIAGE, _rank_for
from screening.management.commands.seed_demo_history import HISTORY_MODEL_VERSION
from screening.models import Screening

S = ReferralStatus
AWAIT_ROUTINE = dt.timedelta(hours=24)
K = ReferralEvent.Kind
DECLINE_REASONS = (
    "이번 주 진료 정원이 찼습니다. / No capacity this week.",
    "담당 교수 학회 참석으로 진료가 어렵습니다. / The specialist is away this month.",
)
CANCEL_REASONS = (
    "환자가 가까운 의원에 다니기로 했습니다. / The patient chose a clinic nearer home.",
)
NO_SHOW_NOTES = ("연락이 닿지 않았습니다. / Could not be reached.",)
DIAGNOSES = {
    "D": "비증식성 당뇨망막병증. 혈당 관리, 6개월 후 재검. / Non-proliferative diabetic "
    "retinopathy; glucose control, review in 6 months.",
    "G": "녹내장 의증. 안압하강제 시작, 3개월 후 시야검사. / Suspected glaucoma; pressure-lowering "
    "drops started, visual field test in 3 months.",
    "C": "노년 백내장. 수술 예약. / Age-related cataract; surgery booked.",
    "A": "건성 나이관련황반변성. 경과 관찰. / Dry age-related macular degeneration; monitoring.",
    "H": "고혈압망막병증. 내과 협진 의뢰. / Hypertensive retinopathy; referred to internal medicine.",
    "M": "병적 근시. 1년 후 재검. / Pathological myopia; review in a year.",
    "O": "기타 망막 소견, 경과 관찰. / Other retinal finding; monitoring.",
}
NO_FINDING = "안저 정상. 1년 후 재검진. / Normal fundus; rescreen in a year."


class _Life:
    """One referral's history as it is written: the row's fields and its events."""

    def __init__(self, screening: Screening, fields: dict[str, Any]) -> None:
        self.screening = screening
        self.fields: dict[str, Any] = {"status": S.PROPOSED, "hospital_id": None, **fields}
        self.events: list[ReferralEvent] = []
        finished = screening.completed_at or screening.created_at
        self.at: dt.datetime = finished + dt.timedelta(minutes=1)
        self.created_at = self.at

    def move(self, to: str, kind: str, at: dt.datetime, actor: User | None, note: str = "") -> None:
        self.events.append(
            ReferralEvent(
                kind=kind,
                from_status=self.fields["status"] if self.events else "",
                to_status=to,
                hospital_id=self.fields["hospital_id"],
                actor=actor,
                note=note,
                created_at=at,
            )
        )
        self.fields["status"] = to
        self.at = at


def seed_history(*, now: dt.datetime | None = None) -> str:
    now = now or timezone.now()
    staff = {
        m.hospital_id: m.user
        for m in HospitalStaffMembership.objects.select_related("user").filter(
            user__username="hospital"
        )
    }
    screenings = list(
        Screening.objects.filter(model_version=HISTORY_MODEL_VERSION, triage__in=REFERRABLE_TRIAGE)
        .filter(referrals__isnull=True)
        .select_related("patient", "site", "health_worker")
        .order_by("created_at", "pk")
    )
    lives = [_live(s, staff, now) for s in screenings]
    with transaction.atomic():
        referrals = [Referral(screening=life.screening, **life.fields) for life in lives]
        Referral.objects.bulk_create(referrals)
        events = []
        for referral, life in zip(referrals, lives, strict=True):
            referral.created_at, referral.updated_at = life.created_at, life.at
            for event in life.events:
                event.referral = referral
                events.append(event)
        # auto_now(_add) stamps the rows now: then they get the times they happened.
        Referral.objects.bulk_update(referrals, ["created_at", "updated_at"])
        times = [event.created_at for event in events]
        ReferralEvent.objects.bulk_create(events)
        for event, at in zip(events, times, strict=True):
            event.created_at = at
        ReferralEvent.objects.bulk_update(events, ["created_at"])
    return f"History: {len(referrals)} past referrals added."


def _live(screening: Screening, staff: dict[int, User], now: dt.datetime) -> _Life:
    """The referral of ``screening`` as it stands at ``now``."""
    rng = random.Random(screening.study_instance_uid)
    life = _Life(screening, _rank_for(screening))
    life.move(S.PROPOSED, K.PROPOSED, life.at, None, life.fields["proposal_note"])
    candidates = life.fields["candidates"]
    worker = screening.health_worker
    urgent = life.fields["urgency"] == Referral.Urgency.URGENT
    if not candidates:
        return life
    if rng.random() < 0.04:
        cancelled = life.at + dt.timedelta(hours=rng.uniform(2, 30))
        if cancelled <= now:
            life.move(S.CANCELLED, K.CANCELLED, cancelled, worker, rng.choice(CANCEL_REASONS))
        return life
    for rank, candidate in enumerate(candidates[:2]):
        sent = life.at + dt.timedelta(minutes=rng.randint(5, 180))
        if sent > now:
            return life
        life.fields.update(hospital_id=candidate["hospital_id"], sent_at=sent)
        life.move(S.SENT, K.SENT, sent, worker)
        hours = rng.uniform(0.5, 3) if urgent else rng.uniform(2, 40)
        answered = sent + dt.timedelta(hours=hours)
        # Routine referrals sent within the last day wait for the hospital's next clinic day
        # (inside the escalation delay); urgent ones were answered within hours.
        if answered > now or (not urgent and sent > now - AWAIT_ROUTINE):
            return life
        life.fields["responded_at"] = answered
        if rank == 0 and len(candidates) > 1 and rng.random() < 0.1:
            reason = rng.choice(DECLINE_REASONS)
            life.fields["decline_reason"] = reason
            life.move(S.DECLINED, K.DECLINED, answered, staff.get(candidate["hospital_id"]), reason)
            continue
        return _at_hospital(life, rng, staff.get(candidate["hospital_id"]), urgent, answered, now)
    return life


def _at_hospital(
    life: _Life,
    rng: random.Random,
    member: User | None,
    urgent: bool,
    accepted: dt.datetime,
    now: dt.datetime,
) -> _Life:
    """Accepted at ``accepted``: the appointment, and what came of it."""
    day = timezone.localdate(accepted) + dt.timedelta(days=1 if urgent else rng.randint(3, 21))
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    appointment = timezone.make_aware(
        dt.datetime.combine(day, dt.time(9 + rng.randrange(7), rng.choice((0, 30))))
    )
    life.fields["appointment_at"] = appointment
    life.move(S.ACCEPTED, K.ACCEPTED, accepted, member)
    if appointment + dt.timedelta(hours=1) > now:
        return life
    if rng.random() < 0.1:
        life.move(
            S.NO_SHOW, K.NO_SHOW, appointment + dt.timedelta(hours=2), member, NO_SHOW_NOTES[0]
        )
        return life
    life.move(S.ATTENDED, K.ATTENDED, appointment + dt.timedelta(hours=1), member)
    completed = appointment + dt.timedelta(hours=rng.uniform(2, 72))
    if completed > now:
        return life
    findings = life.screening.findings or []
    diagnosis = DIAGNOSES.get(findings[0], NO_FINDING) if findings else NO_FINDING
    life.fields.update(diagnosis=diagnosis, completed_at=completed)
    life.move(S.COMPLETED, K.COMPLETED, completed, member)
    return life
