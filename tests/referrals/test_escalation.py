"""Escalation of unanswered referrals, with frozen time."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from accounts.models import AdminAlert
from config.errors import NotFound
from referrals import services
from referrals.models import Hospital, Referral, ReferralEvent, ReferralStatus
from referrals.tasks import referrals_escalate
from tests.factories import ScreeningFactory
from tests.referrals.factories import HospitalFactory, HospitalStaffFactory

pytestmark = pytest.mark.django_db
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def sent_referral(settings):
    settings.REFERRAL_ESCALATE_AFTER_HOURS = 48
    settings.REFERRAL_ESCALATE_URGENT_AFTER_HOURS = 4
    hospitals = [
        HospitalFactory(latitude=37.5796, longitude=126.9990, specialties=["retina"]),
        HospitalFactory(latitude=37.5622, longitude=126.9410, specialties=["retina"]),
        HospitalFactory(latitude=37.4500, longitude=127.1000, specialties=["general"]),
    ]

    def make(triage="referable"):
        with time_machine.travel(START, tick=False):
            screening = ScreeningFactory(triage=triage, findings=["D"])
            proposal = services.referral_propose_for_screening(screening_id=screening.pk)
            first = proposal.candidates[0]["hospital_id"]
            return services.referral_send(
                user=screening.health_worker, screening_id=screening.pk, hospital_id=first
            )

    make.hospitals = hospitals
    return make


def test_routine_referral_is_rerouted_after_48_hours_to_the_next_candidate(sent_referral):
    referral = sent_referral()
    first, second = referral.candidates[0]["hospital_id"], referral.candidates[1]["hospital_id"]
    with time_machine.travel(START + dt.timedelta(hours=47), tick=False):
        assert services.referrals_escalate_overdue() == {
            "escalated": 0,
            "exhausted": 0,
            "skipped": 0,
        }
    with time_machine.travel(START + dt.timedelta(hours=48, minutes=1), tick=False):
        referrals_escalate()  # the beat task
        referrals_escalate()  # a second run in the same minute changes nothing
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.SENT
    assert referral.hospital_id == second
    assert referral.sent_at == START + dt.timedelta(hours=48, minutes=1)
    escalated = referral.events.filter(kind=ReferralEvent.Kind.ESCALATED)
    assert escalated.count() == 1
    assert escalated.get().actor is None
    # The first hospital's staff no longer see it and cannot accept it any more.
    staff = HospitalStaffFactory(hospital=Hospital.objects.get(pk=first))
    with pytest.raises(NotFound):
        services.referral_accept(
            user=staff,
            referral_id=referral.pk,
            appointment_at=timezone.now() + dt.timedelta(days=1),
        )


def test_urgent_referral_escalates_after_4_hours(sent_referral):
    referral = sent_referral(triage="urgent")
    assert referral.urgency == Referral.Urgency.URGENT
    with time_machine.travel(START + dt.timedelta(hours=3, minutes=59), tick=False):
        assert services.referrals_escalate_overdue()["escalated"] == 0
    with time_machine.travel(START + dt.timedelta(hours=4, minutes=1), tick=False):
        assert services.referrals_escalate_overdue()["escalated"] == 1


def test_answered_referral_is_not_escalated(sent_referral):
    referral = sent_referral()
    staff = HospitalStaffFactory(hospital=referral.hospital)
    with time_machine.travel(START + dt.timedelta(hours=1), tick=False):
        services.referral_accept(
            user=staff,
            referral_id=referral.pk,
            appointment_at=timezone.now() + dt.timedelta(days=5),
        )
    with time_machine.travel(START + dt.timedelta(days=10), tick=False):
        assert services.referrals_escalate_overdue()["escalated"] == 0
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.ACCEPTED


def test_no_candidates_left_raises_one_admin_alert(sent_referral):
    referral = sent_referral()
    now = START
    for _ in range(len(referral.candidates) - 1):
        now += dt.timedelta(hours=49)
        with time_machine.travel(now, tick=False):
            assert services.referrals_escalate_overdue()["escalated"] == 1
    for _ in range(2):
        now += dt.timedelta(hours=49)
        with time_machine.travel(now, tick=False):
            services.referrals_escalate_overdue()
    referral.refresh_from_db()
    assert referral.escalation_exhausted
    assert referral.status == ReferralStatus.SENT
    alert = AdminAlert.objects.get(kind="referral_unanswered")
    assert alert.object_ref == f"referral:{referral.pk}"
    assert referral.events.filter(kind=ReferralEvent.Kind.ESCALATION_FAILED).count() == 1
    tried = list(
        referral.events.filter(kind__in=["sent", "escalated"]).values_list("hospital_id", flat=True)
    )
    assert sorted(tried) == sorted(c["hospital_id"] for c in referral.candidates)


def test_escalation_tells_the_patient_once(sent_referral, django_capture_on_commit_callbacks):
    from accounts.models import OutboundMessage

    referral = sent_referral()
    with (
        time_machine.travel(START + dt.timedelta(hours=49), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.referrals_escalate_overdue()
        services.referrals_escalate_overdue()
    event = referral.events.get(kind=ReferralEvent.Kind.ESCALATED)
    message = OutboundMessage.objects.get(dedupe_key=f"referral-event:{event.pk}")
    assert message.to == referral.screening.patient.phone
    assert services.referral_event_notify(event_id=event.pk) is False  # redelivery: no second text


def test_health_worker_can_resend_by_hand_once_escalation_is_exhausted(sent_referral):
    referral = sent_referral()
    now = START
    for _ in range(len(referral.candidates) + 1):
        now += dt.timedelta(hours=49)
        with time_machine.travel(now, tick=False):
            services.referrals_escalate_overdue()
    referral.refresh_from_db()
    assert referral.escalation_exhausted
    elsewhere = HospitalFactory(latitude=37.45, longitude=126.70)
    resent = services.referral_send(
        user=referral.screening.health_worker,
        screening_id=referral.screening_id,
        hospital_id=elsewhere.pk,
    )
    assert resent.pk == referral.pk
    assert (resent.status, resent.hospital_id, resent.escalation_exhausted) == (
        "sent",
        elsewhere.pk,
        False,
    )
