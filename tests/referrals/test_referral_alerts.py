"""Referral events reach staff: a new (or passed-on) referral tells the receiving hospital's
staff; the hospital's answer and outcome tell the health worker who screened."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.utils import timezone

from accounts.models import Notification, NotificationKind
from accounts.notifications import notification_preferences_update
from referrals import services
from referrals.models import Hospital, ReferralEvent
from referrals.notifications import referral_event_notify_staff
from tests.factories import HealthWorkerFactory, PatientFactory, ScreeningFactory, SiteFactory
from tests.referrals.factories import HospitalFactory, HospitalStaffFactory

pytestmark = pytest.mark.django_db
K = NotificationKind
UNREAD = re.compile(r'id="notifications-unread"[^>]*>(\d+)<')


@pytest.fixture
def world():
    site = SiteFactory(name="정선군보건소", name_en="Jeongseon Health Centre")
    hospital = HospitalFactory(name="강릉아산병원", name_en="Gangneung Asan Hospital")
    other_hospital = HospitalFactory()
    worker = HealthWorkerFactory(site=site, email="chw@example.org")
    screening = ScreeningFactory(
        patient=PatientFactory(site=site), health_worker=worker, triage="referable", findings=["D"]
    )
    staff = [
        HospitalStaffFactory(hospital=hospital, email="desk@example.org", preferred_language="ko"),
        HospitalStaffFactory(hospital=hospital, email="nurse@example.org"),
    ]
    return {
        "site": site,
        "hospital": hospital,
        "worker": worker,
        "colleague": HealthWorkerFactory(site=site, email="other-chw@example.org"),
        "screening": screening,
        "staff": staff,
        "stranger": HospitalStaffFactory(hospital=other_hospital, email="far@example.org"),
    }


def send_referral(world):
    return services.referral_send(
        user=world["worker"],
        screening_id=world["screening"].pk,
        hospital_id=world["hospital"].pk,
    )


def test_sending_a_referral_tells_the_receiving_hospitals_staff_only(
    world, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        referral = send_referral(world)
    for member in world["staff"]:
        [notification] = Notification.objects.filter(recipient=member, kind=K.REFERRAL_NEW)
        assert notification.link == f"/referrals/{referral.pk}/"
        assert notification.params["number"] == referral.pk
    assert not Notification.objects.filter(recipient=world["stranger"]).exists()
    assert not Notification.objects.filter(recipient=world["worker"]).exists()
    assert sorted(m.to[0] for m in mailoutbox) == ["desk@example.org", "nurse@example.org"]
    # Each in their own language; never the patient's name.
    by_to = {m.to[0]: m for m in mailoutbox}
    assert "정선군보건소" in by_to["desk@example.org"].body
    assert "Jeongseon Health Centre" in by_to["nurse@example.org"].body
    patient = world["screening"].patient.name
    assert all(patient not in m.body and patient not in m.subject for m in mailoutbox)


def test_the_new_referral_is_counted_in_the_hospital_headers(client, world):
    send_referral(world)
    client.force_login(world["staff"][1])
    html = client.get("/referrals/").content.decode()
    assert UNREAD.search(html).group(1) == "1"
    page = client.get("/accounts/notifications/").content.decode()
    assert "Gangneung Asan Hospital" in page and "Jeongseon Health Centre" in page


def test_the_outcome_tells_the_health_worker_who_screened(
    world, mailoutbox, django_capture_on_commit_callbacks
):
    referral = send_referral(world)
    desk = world["staff"][0]
    appointment = timezone.now() + dt.timedelta(days=3)
    with django_capture_on_commit_callbacks(execute=True):
        services.referral_accept(user=desk, referral_id=referral.pk, appointment_at=appointment)
    [accepted] = Notification.objects.filter(recipient=world["worker"], kind=K.REFERRAL_OUTCOME)
    assert accepted.title_msgid == "%(hospital)s accepted referral #%(number)s"
    assert accepted.params["when"] == f"{timezone.localtime(appointment):%Y-%m-%d %H:%M}"
    assert [m.to for m in mailoutbox] == [["chw@example.org"]]
    assert "Gangneung Asan Hospital" in mailoutbox[0].subject

    with django_capture_on_commit_callbacks(execute=True):
        services.referral_complete(
            user=desk, referral_id=referral.pk, diagnosis="Proliferative diabetic retinopathy"
        )
    assert Notification.objects.filter(recipient=world["worker"]).count() == 2
    # The diagnosis stays in the portal, out of the email.
    assert "retinopathy" not in mailoutbox[-1].body
    assert not Notification.objects.filter(recipient=world["colleague"]).exists()
    # The hospital is not told about its own answers.
    assert Notification.objects.filter(recipient=desk, kind=K.REFERRAL_OUTCOME).count() == 0


def test_decline_and_no_show_reach_the_health_worker(world):
    referral = send_referral(world)
    desk = world["staff"][0]
    services.referral_decline(user=desk, referral_id=referral.pk, reason="No retina clinic")
    titles = list(
        Notification.objects.filter(recipient=world["worker"]).values_list("title_msgid", flat=True)
    )
    assert titles == ["%(hospital)s declined referral #%(number)s"]
    referral = send_referral(world)
    services.referral_accept(
        user=desk, referral_id=referral.pk, appointment_at=timezone.now() + dt.timedelta(days=1)
    )
    services.referral_mark_no_show(user=desk, referral_id=referral.pk)
    assert Notification.objects.filter(
        recipient=world["worker"],
        title_msgid="The patient of referral #%(number)s did not attend %(hospital)s",
    ).exists()


def test_an_escalated_referral_tells_the_next_hospital(settings):
    settings.REFERRAL_ESCALATE_AFTER_HOURS = 48
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    HospitalFactory(latitude=37.5796, longitude=126.9990, specialties=["retina"])
    HospitalFactory(latitude=37.5622, longitude=126.9410, specialties=["retina"])
    with time_machine.travel(start, tick=False):
        screening = ScreeningFactory(triage="referable", findings=["D"])
        proposal = services.referral_propose_for_screening(screening_id=screening.pk)
        first, second = (c["hospital_id"] for c in proposal.candidates[:2])
        services.referral_send(
            user=screening.health_worker, screening_id=screening.pk, hospital_id=first
        )
    next_staff = HospitalStaffFactory(hospital=Hospital.objects.get(pk=second))
    with time_machine.travel(start + dt.timedelta(hours=49), tick=False):
        services.referrals_escalate_overdue()
    [notification] = Notification.objects.filter(recipient=next_staff, kind=K.REFERRAL_NEW)
    assert "passed on" in notification.body_msgid


def test_each_event_notifies_once_and_follows_the_preference(
    world, mailoutbox, django_capture_on_commit_callbacks
):
    nurse = world["staff"][1]
    notification_preferences_update(user=nurse, choices={K.REFERRAL_NEW: (False, True)})
    with django_capture_on_commit_callbacks(execute=True):
        referral = send_referral(world)
        event = referral.events.get(kind=ReferralEvent.Kind.SENT)
        assert referral_event_notify_staff(event=event) == 0  # a second call: no one again
    assert Notification.objects.filter(kind=K.REFERRAL_NEW).count() == 2
    assert [m.to for m in mailoutbox] == [["desk@example.org"]]


def test_a_proposal_tells_no_one(world):
    services.referral_propose_for_screening(screening_id=world["screening"].pk)
    assert not Notification.objects.exists()
