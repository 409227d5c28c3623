"""Proposal hook, the referral lifecycle, history and patient messages."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError
from django.utils import timezone

from accounts.models import OutboundMessage
from config.errors import Conflict, Forbidden, InvalidInput, NotFound
from referrals import services
from referrals.models import Referral, ReferralEvent, ReferralStatus
from referrals.tasks import referral_propose_for_screening as propose_task
from tests.factories import HealthWorkerFactory, PatientFactory, ScreeningFactory, SiteFactory
from tests.referrals.factories import HospitalFactory, HospitalStaffFactory, ReferralFactory

pytestmark = pytest.mark.django_db
S = ReferralStatus


@pytest.fixture
def hospitals():
    return [
        HospitalFactory(
            name="서울대학교병원",
            latitude=37.5796,
            longitude=126.9990,
            specialties=["retina", "general"],
        ),
        HospitalFactory(
            name="세브란스병원", latitude=37.5622, longitude=126.9410, specialties=["retina"]
        ),
        HospitalFactory(
            name="김안과병원",
            latitude=37.5262,
            longitude=126.8964,
            specialties=["general", "cataract"],
        ),
    ]


def referable_screening(**kwargs):
    kwargs.setdefault("triage", "referable")
    kwargs.setdefault("findings", ["D"])
    return ScreeningFactory(**kwargs)


def test_proposal_for_a_referable_screening_stores_ranked_candidates(
    hospitals, django_capture_on_commit_callbacks
):
    screening = referable_screening()
    with django_capture_on_commit_callbacks(execute=True):
        referral = services.referral_propose_for_screening(screening_id=screening.pk)
    assert referral.status == S.PROPOSED
    assert referral.required_specialties == ["retina"]
    assert referral.origin_source == Referral.Origin.SITE
    assert [c["rank"] for c in referral.candidates] == [1, 2, 3]
    top = referral.candidates[0]
    assert top["name"] in {"서울대학교병원", "세브란스병원"}
    assert top["specialties"] == ["retina"]
    assert {"rank", "hospital_id", "score", "distance_km", "reasons"} <= set(top)
    assert referral.events.get().kind == ReferralEvent.Kind.PROPOSED
    message = OutboundMessage.objects.get(dedupe_key=f"referral-event:{referral.events.get().pk}")
    assert message.to == screening.patient.phone


def test_proposal_prefers_the_patients_home_over_the_site(hospitals):
    patient = PatientFactory(home_latitude=35.1151, home_longitude=129.0422)  # lives in Busan
    busan = HospitalFactory(latitude=35.1006, longitude=129.0175, specialties=["retina"])
    referral = services.referral_propose_for_screening(
        screening_id=referable_screening(patient=patient).pk
    )
    assert referral.origin_source == Referral.Origin.HOME
    assert referral.candidates[0]["hospital_id"] == busan.pk
    assert referral.candidates[0]["distance_km"] == pytest.approx(2.77, abs=0.02)


def test_proposal_is_idempotent_when_the_task_is_redelivered(hospitals):
    screening = referable_screening(triage="urgent")
    propose_task(screening.pk)
    propose_task(screening.pk)
    referral = Referral.objects.get(screening=screening)
    assert referral.urgency == Referral.Urgency.URGENT
    assert referral.events.count() == 1


def test_no_proposal_for_normal_or_medication_screenings(hospitals):
    for triage in ("normal", "medication"):
        screening = ScreeningFactory(triage=triage)
        assert services.referral_propose_for_screening(screening_id=screening.pk) is None
    assert not Referral.objects.exists()
    assert services.referral_propose_for_screening(screening_id=987654321) is None


def test_ungradable_screening_gets_general_ophthalmology(hospitals):
    referral = services.referral_propose_for_screening(
        screening_id=ScreeningFactory(triage="ungradable", findings=[]).pk
    )
    assert referral.required_specialties == ["general"]


def test_proposal_without_any_coordinates_records_why(hospitals):
    site = SiteFactory(latitude=None, longitude=None)
    screening = referable_screening(patient=PatientFactory(site=site))
    referral = services.referral_propose_for_screening(screening_id=screening.pk)
    assert referral.candidates == []
    assert referral.proposal_note == "no_origin"


def test_proposal_with_no_hospital_in_range_records_the_radius():
    referral = services.referral_propose_for_screening(screening_id=referable_screening().pk)
    assert referral.candidates == []
    assert referral.proposal_note == "none_in_range"
    assert referral.radius_km == 400.0


def test_the_database_allows_one_active_referral_per_screening(hospitals):
    referral = ReferralFactory()
    with pytest.raises(IntegrityError):
        ReferralFactory(screening=referral.screening)


def test_cancelled_referral_does_not_block_a_new_one():
    referral = ReferralFactory(status=S.CANCELLED)
    ReferralFactory(screening=referral.screening)
    assert Referral.objects.filter(screening=referral.screening).count() == 2


def test_full_lifecycle_from_proposal_to_completion(hospitals, django_capture_on_commit_callbacks):
    screening = referable_screening()
    worker = screening.health_worker
    with django_capture_on_commit_callbacks(execute=True):
        referral = services.referral_propose_for_screening(screening_id=screening.pk)
        chosen = hospitals[1]
        referral = services.referral_send(
            user=worker, screening_id=screening.pk, hospital_id=chosen.pk
        )
        assert referral.status == S.SENT and referral.hospital_id == chosen.pk
        staff = HospitalStaffFactory(hospital=chosen)
        when = timezone.now() + dt.timedelta(days=3)
        referral = services.referral_accept(
            user=staff, referral_id=referral.pk, appointment_at=when
        )
        assert referral.appointment_at == when
        referral = services.referral_mark_attended(user=staff, referral_id=referral.pk)
        referral = services.referral_complete(
            user=staff, referral_id=referral.pk, diagnosis="Moderate NPDR, laser planned"
        )
    assert referral.status == S.COMPLETED
    history = list(referral.events.values_list("kind", "from_status", "to_status"))
    assert history == [
        ("proposed", "", "proposed"),
        ("sent", "proposed", "sent"),
        ("accepted", "sent", "accepted"),
        ("attended", "accepted", "attended"),
        ("completed", "attended", "completed"),
    ]
    assert referral.events.get(kind="accepted").actor == staff
    # Every event but "attended" texts the patient, each once.
    topics = OutboundMessage.objects.filter(topic="referral", to=screening.patient.phone)
    assert topics.count() == 4
    assert (
        services.referral_event_notify(event_id=referral.events.get(kind="completed").pk) is False
    )


def test_decline_needs_a_reason_and_then_the_health_worker_sends_elsewhere(hospitals):
    screening = referable_screening()
    services.referral_propose_for_screening(screening_id=screening.pk)
    referral = services.referral_send(
        user=screening.health_worker, screening_id=screening.pk, hospital_id=hospitals[0].pk
    )
    staff = HospitalStaffFactory(hospital=hospitals[0])
    with pytest.raises(InvalidInput):
        services.referral_decline(user=staff, referral_id=referral.pk, reason="   ")
    referral = services.referral_decline(
        user=staff, referral_id=referral.pk, reason="No retina clinic this month"
    )
    assert referral.status == S.DECLINED
    # The declining hospital no longer sees it once re-sent elsewhere.
    referral = services.referral_send(
        user=screening.health_worker, screening_id=screening.pk, hospital_id=hospitals[1].pk
    )
    assert referral.status == S.SENT and referral.decline_reason == ""
    with pytest.raises(NotFound):
        services.referral_accept(
            user=staff,
            referral_id=referral.pk,
            appointment_at=timezone.now() + dt.timedelta(days=1),
        )


def test_sending_twice_is_a_conflict(hospitals):
    screening = referable_screening()
    services.referral_send(
        user=screening.health_worker, screening_id=screening.pk, hospital_id=hospitals[0].pk
    )
    with pytest.raises(Conflict):
        services.referral_send(
            user=screening.health_worker, screening_id=screening.pk, hospital_id=hospitals[1].pk
        )


def test_out_of_order_transitions_are_conflicts(hospitals):
    referral = ReferralFactory(hospital=hospitals[0])
    staff = HospitalStaffFactory(hospital=hospitals[0])
    with pytest.raises(Conflict):
        services.referral_mark_attended(user=staff, referral_id=referral.pk)
    with pytest.raises(Conflict):
        services.referral_complete(user=staff, referral_id=referral.pk, diagnosis="x")
    services.referral_accept(
        user=staff, referral_id=referral.pk, appointment_at=timezone.now() + dt.timedelta(days=1)
    )
    with pytest.raises(Conflict):
        services.referral_decline(user=staff, referral_id=referral.pk, reason="too late")


def test_appointment_in_the_past_or_garbage_is_rejected(hospitals):
    referral = ReferralFactory(hospital=hospitals[0])
    staff = HospitalStaffFactory(hospital=hospitals[0])
    for bad in ("yesterday", "", timezone.now() - dt.timedelta(days=1), "2020-01-01T10:00"):
        with pytest.raises(InvalidInput):
            services.referral_accept(user=staff, referral_id=referral.pk, appointment_at=bad)
    referral.refresh_from_db()
    assert referral.status == S.SENT and not referral.events.exists()


def test_other_hospitals_staff_cannot_see_or_act(hospitals):
    referral = ReferralFactory(hospital=hospitals[0])
    stranger = HospitalStaffFactory(hospital=hospitals[1])
    with pytest.raises(NotFound):
        services.referral_decline(user=stranger, referral_id=referral.pk, reason="not ours")


def test_health_worker_cannot_accept_and_hospital_cannot_cancel(hospitals):
    referral = ReferralFactory(hospital=hospitals[0])
    with pytest.raises(Forbidden):
        services.referral_accept(
            user=referral.screening.health_worker,
            referral_id=referral.pk,
            appointment_at=timezone.now() + dt.timedelta(days=1),
        )
    staff = HospitalStaffFactory(hospital=hospitals[0])
    with pytest.raises(Forbidden):
        services.referral_cancel(user=staff, referral_id=referral.pk)


def test_health_worker_of_another_site_cannot_send(hospitals):
    screening = referable_screening()
    outsider = HealthWorkerFactory(site=SiteFactory())
    with pytest.raises(NotFound):
        services.referral_send(
            user=outsider, screening_id=screening.pk, hospital_id=hospitals[0].pk
        )
    assert not Referral.objects.exists()


def test_cancel_frees_the_screening_for_a_new_referral(hospitals):
    screening = referable_screening()
    referral = services.referral_send(
        user=screening.health_worker, screening_id=screening.pk, hospital_id=hospitals[0].pk
    )
    services.referral_cancel(
        user=screening.health_worker, referral_id=referral.pk, reason="moved away"
    )
    again = services.referral_send(
        user=screening.health_worker, screening_id=screening.pk, hospital_id=hospitals[1].pk
    )
    assert again.pk != referral.pk and again.status == S.SENT


def test_accepting_after_a_colleague_declined_is_a_409_not_a_404(hospitals):
    # The loser of the accept/decline race must learn that someone else acted (409), and the
    # declined referral stays in the hospital's view until it is re-sent elsewhere.
    referral = ReferralFactory(hospital=hospitals[0])
    alice, bob = (
        HospitalStaffFactory(hospital=hospitals[0]),
        HospitalStaffFactory(hospital=hospitals[0]),
    )
    services.referral_decline(user=bob, referral_id=referral.pk, reason="No slots")
    with pytest.raises(Conflict):
        services.referral_accept(
            user=alice,
            referral_id=referral.pk,
            appointment_at=timezone.now() + dt.timedelta(days=1),
        )
    services.referral_send(
        user=referral.screening.health_worker,
        screening_id=referral.screening_id,
        hospital_id=hospitals[1].pk,
    )
    with pytest.raises(NotFound):
        services.referral_accept(
            user=alice,
            referral_id=referral.pk,
            appointment_at=timezone.now() + dt.timedelta(days=1),
        )
