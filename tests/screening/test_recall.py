"""Recall (issue 16.1): the next due date per outcome, the hold while a referral is open, missed
appointments back on the list, the SMS reminder once, the due list's scope, recall coverage."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.utils import timezone, translation
from django.utils.formats import date_format

from accounts.models import OutboundMessage, Role
from dashboard.recall import cohort_window, recall_coverage
from dashboard.scope import DashboardFilters, DashboardScope
from referrals import services as referral_services
from screening.inference_services import ScreeningPrediction, screening_store_result
from screening.models import Recall, RecallReason, Screening
from screening.recall import add_months, patient_recall_refresh, recalls_due
from screening.result_of_record import screening_result_of_record_set
from screening.tasks import recall_reminders_send
from screening.triage import TriageResult
from tests.factories import (
    AdminFactory,
    HealthWorkerFactory,
    PatientFactory,
    ScreeningFactory,
    SiteFactory,
    UserFactory,
)
from tests.referrals.factories import HospitalFactory, HospitalStaffFactory

pytestmark = pytest.mark.django_db
SEOUL = ZoneInfo("Asia/Seoul")


@pytest.fixture
def hw():
    return HealthWorkerFactory()


@pytest.fixture
def patient(hw):
    return PatientFactory(site=hw.site_membership.site)


def finish(patient, hw, triage: str) -> Screening:
    """A screening finished through the service that stores results (no model needed: no
    gradable photo, the triage is given)."""
    screening = ScreeningFactory(
        patient=patient, health_worker=hw, status=Screening.Status.PROCESSING, triage=""
    )
    screening_store_result(
        prediction=ScreeningPrediction(
            screening_id=screening.pk, images=[], outcome=TriageResult(triage=triage)
        )
    )
    screening.refresh_from_db()
    return screening


def screened_on(patient, hw, day: dt.date, triage: str = "normal", **extra) -> Screening:
    """A finished screening dated ``day`` (noon, Seoul), its recall refreshed."""
    at = dt.datetime.combine(day, dt.time(12), tzinfo=SEOUL)
    screening = ScreeningFactory(patient=patient, health_worker=hw, triage=triage, **extra)
    Screening.objects.filter(pk=screening.pk).update(created_at=at, completed_at=at)
    patient_recall_refresh(patient_id=patient.pk)
    return screening


# --- due dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("triage", "months", "reason"),
    [
        ("normal", 12, RecallReason.ROUTINE),
        ("medication", 6, RecallReason.MEDICATION),
        ("ungradable", 1, RecallReason.RETAKE),
        # Referable or urgent and no referral holds the patient (none was made): soon.
        ("referable", 3, RecallReason.NOT_REFERRED),
        ("urgent", 1, RecallReason.NOT_REFERRED),
    ],
)
def test_a_finished_screening_sets_the_next_due_date_per_outcome(
    patient, hw, triage, months, reason
):
    screening = finish(patient, hw, triage)
    recall = Recall.objects.get(patient=patient)
    assert recall.due_on == add_months(timezone.localdate(screening.completed_at), months)
    assert recall.reason == reason and recall.screening_id == screening.pk


def test_add_months_keeps_the_day_or_takes_the_last_of_a_shorter_month():
    assert add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2025, 11, 15), 12) == dt.date(2026, 11, 15)
    assert add_months(dt.date(2026, 3, 15), -13) == dt.date(2025, 2, 15)


def test_a_newer_screening_moves_the_due_date(patient, hw):
    today = timezone.localdate()
    screened_on(patient, hw, today - dt.timedelta(days=200), "medication")
    assert Recall.objects.get(patient=patient).reason == RecallReason.MEDICATION
    finish(patient, hw, "normal")
    recall = Recall.objects.get(patient=patient)
    assert (recall.due_on, recall.reason) == (add_months(today, 12), RecallReason.ROUTINE)


def test_the_due_date_follows_a_changed_result_of_record(patient, hw):
    screening = finish(patient, hw, "medication")
    grader = UserFactory(role=Role.GRADER)
    screening_result_of_record_set(
        screening_id=screening.pk,
        triage="normal",
        findings=[],
        source="grader",
        by_user_id=grader.pk,
    )
    recall = Recall.objects.get(patient=patient)
    assert recall.reason == RecallReason.ROUTINE
    assert recall.due_on == add_months(timezone.localdate(screening.completed_at), 12)


# --- referrals: hold, missed appointment, visit done ------------------------------------------


def test_no_due_date_while_a_referral_is_open_and_a_no_show_comes_back_to_the_list(patient, hw):
    screening = finish(patient, hw, "referable")
    referral = referral_services.referral_propose_for_screening(screening_id=screening.pk)
    recall = Recall.objects.get(patient=patient)
    assert (recall.due_on, recall.reason) == (None, RecallReason.REFERRAL_OPEN)
    assert patient not in {r.patient for r in recalls_due(user=hw)}

    hospital = HospitalFactory()
    staff = HospitalStaffFactory(hospital=hospital)
    referral_services.referral_send(user=hw, screening_id=screening.pk, hospital_id=hospital.pk)
    referral_services.referral_accept(
        user=staff, referral_id=referral.pk, appointment_at=timezone.now() + dt.timedelta(days=3)
    )
    assert Recall.objects.get(patient=patient).due_on is None  # still with the hospital

    referral_services.referral_mark_no_show(user=staff, referral_id=referral.pk)
    recall = Recall.objects.get(patient=patient)
    assert recall.reason == RecallReason.MISSED_APPOINTMENT
    assert recall.due_on == timezone.localdate()
    assert [r.patient for r in recalls_due(user=hw)] == [patient]

    # Re-sent to a hospital: held again.
    referral_services.referral_send(user=hw, screening_id=screening.pk, hospital_id=hospital.pk)
    assert Recall.objects.get(patient=patient).reason == RecallReason.REFERRAL_OPEN


def test_a_completed_referral_restarts_the_yearly_clock_and_a_cancelled_one_releases(patient, hw):
    screening = finish(patient, hw, "referable")
    hospital = HospitalFactory()
    staff = HospitalStaffFactory(hospital=hospital)
    referral = referral_services.referral_send(
        user=hw, screening_id=screening.pk, hospital_id=hospital.pk
    )
    referral_services.referral_accept(
        user=staff, referral_id=referral.pk, appointment_at=timezone.now() + dt.timedelta(days=1)
    )
    referral_services.referral_complete(user=staff, referral_id=referral.pk, diagnosis="NPDR")
    recall = Recall.objects.get(patient=patient)
    assert recall.reason == RecallReason.AFTER_REFERRAL
    assert recall.due_on == add_months(timezone.localdate(), 12)

    other = PatientFactory(site=patient.site)
    second = finish(other, hw, "urgent")
    proposal = referral_services.referral_propose_for_screening(screening_id=second.pk)
    assert Recall.objects.get(patient=other).due_on is None
    referral_services.referral_cancel(user=hw, referral_id=proposal.pk, reason="moved away")
    recall = Recall.objects.get(patient=other)
    assert recall.reason == RecallReason.NOT_REFERRED
    assert recall.due_on == add_months(timezone.localdate(second.completed_at), 1)


def test_the_database_refuses_a_due_date_while_a_referral_is_open(patient, hw):
    from django.db import IntegrityError, transaction

    finish(patient, hw, "normal")
    with pytest.raises(IntegrityError), transaction.atomic():
        Recall.objects.filter(patient=patient).update(reason=RecallReason.REFERRAL_OPEN)


# --- the reminder -----------------------------------------------------------------------------


def due_in(patient, hw, days: int) -> Recall:
    """A normal screening dated so that the 12-month recall falls ``days`` from today."""
    screened_on(patient, hw, add_months(timezone.localdate() + dt.timedelta(days=days), -12))
    recall = Recall.objects.get(patient=patient)
    assert recall.due_on == timezone.localdate() + dt.timedelta(days=days)
    return recall


def test_the_reminder_is_sent_once_even_when_the_task_runs_twice(patient, hw):
    recall = due_in(patient, hw, 10)
    assert recall_reminders_send.apply().get() == 1
    assert recall_reminders_send.apply().get() == 0
    messages = OutboundMessage.objects.filter(topic="recall")
    assert [m.to for m in messages] == [patient.phone]
    assert patient.site.name in messages[0].body and "EyeBridge" in messages[0].body
    assert messages[0].dedupe_key == f"recall:{patient.pk}:{recall.due_on.isoformat()}"
    recall.refresh_from_db()
    assert recall.reminder_sent_for == recall.due_on
    # Even if the recall's own mark were lost, the message's unique key stops a second text.
    Recall.objects.filter(pk=recall.pk).update(reminder_sent_for=None)
    assert recall_reminders_send.apply().get() == 0
    assert OutboundMessage.objects.filter(topic="recall").count() == 1


def test_no_reminder_for_a_patient_not_yet_due_or_already_overdue(hw):
    site = hw.site_membership.site
    later = PatientFactory(site=site)
    overdue = PatientFactory(site=site)
    due_in(later, hw, settings.RECALL_REMINDER_DAYS_BEFORE + 1)
    due_in(overdue, hw, -3)
    assert recall_reminders_send.apply().get() == 0
    assert not OutboundMessage.objects.filter(topic="recall").exists()
    # The day the window reaches the later patient, they are texted.
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    from screening.recall import recall_reminders_send as send

    assert send(today=tomorrow) == 1
    assert OutboundMessage.objects.get(topic="recall").to == later.phone


def test_a_missed_appointment_gets_no_recall_sms_and_the_beat_runs_the_task(patient, hw):
    from config.celery import app

    Recall.objects.create(
        patient=patient, due_on=timezone.localdate(), reason=RecallReason.MISSED_APPOINTMENT
    )
    assert recall_reminders_send.apply().get() == 0
    entry = settings.CELERY_BEAT_SCHEDULE["screening-recall-reminders"]
    assert entry["task"] == "screening.tasks.recall_reminders_send"
    assert entry["task"] in app.tasks


# --- the due list ---------------------------------------------------------------------------


def test_the_due_list_shows_only_the_health_workers_site(client, hw, patient):
    due_in(patient, hw, 5)
    other_hw = HealthWorkerFactory(site=SiteFactory())
    elsewhere = PatientFactory(site=other_hw.site_membership.site, name="다른 보건소 환자")
    due_in(elsewhere, other_hw, -20)
    not_yet = PatientFactory(site=patient.site, name="아직 아님")
    due_in(not_yet, hw, 60)

    assert [r.patient for r in recalls_due(user=hw)] == [patient]
    assert [r.patient for r in recalls_due(user=other_hw)] == [elsewhere]
    assert {r.patient for r in recalls_due(user=AdminFactory())} == {patient, elsewhere}
    assert not recalls_due(user=UserFactory(role=Role.PHARMACIST)).exists()

    client.force_login(hw)
    page = client.get("/screening/recall/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    body = page.content.decode()
    assert patient.name in body and elsewhere.name not in body and not_yet.name not in body
    assert 'href="/screening/recall/"' in body  # the nav link
    client.force_login(other_hw)
    body = client.get("/screening/recall/").content.decode()
    assert elsewhere.name in body and patient.name not in body
    assert "recall-row" in body and "overdue" in body


def test_the_patient_page_shows_the_due_date(client, hw, patient):
    recall = due_in(patient, hw, 5)
    client.force_login(hw)
    body = client.get(f"/screening/patients/{patient.pk}/", HTTP_ACCEPT_LANGUAGE="en").content
    with translation.override("en"):
        due = date_format(recall.due_on, "DATE_FORMAT")
    assert b"Next screening due" in body and due.encode() in body


# --- coverage on the dashboard ------------------------------------------------------------------


def test_recall_coverage_against_a_hand_example(client, hw):
    site = hw.site_membership.site
    gangwon = HealthWorkerFactory(site=SiteFactory(region="Gangwon"))
    grader = UserFactory(role=Role.GRADER)
    d = dt.date

    def patient_with(*visits, at_site=site, worker=hw):
        person = PatientFactory(site=at_site)
        for day, triage, *final in visits:
            extra = {}
            if final:
                extra = {
                    "final_triage": final[0],
                    "final_source": "grader",
                    "final_by": grader,
                    "final_at": timezone.now(),
                }
            screened_on(person, worker, day, triage, **extra)
        return person

    # End of range 2026-03-15: the cohort's screenings are from 2024-02-15 to 2025-02-14.
    assert cohort_window(d(2026, 3, 15)) == (d(2024, 2, 15), d(2025, 2, 14))
    patient_with((d(2024, 6, 1), "normal"), (d(2025, 5, 1), "normal"))  # back in 11 months
    patient_with((d(2024, 6, 1), "normal"), (d(2025, 8, 1), "normal"))  # 14 months: too late
    patient_with((d(2024, 9, 1), "medication"))  # never came back
    patient_with((d(2024, 6, 1), "referable"), (d(2025, 3, 1), "normal"))  # referred: not counted
    # The AI referred, the grader's read (the result of record) says normal: counted.
    patient_with((d(2024, 7, 1), "referable", "normal"), (d(2025, 1, 1), "normal"))
    patient_with((d(2024, 1, 10), "normal"), (d(2024, 12, 1), "urgent"))  # before the window
    patient_with(
        (d(2024, 6, 1), "normal"),
        (d(2025, 1, 1), "normal"),
        at_site=gangwon.site_membership.site,
        worker=gangwon,
    )

    filters = DashboardFilters(date_from=d(2026, 3, 1), date_to=d(2026, 3, 15))
    everywhere = recall_coverage(scope=DashboardScope(regions=None), filters=filters)
    # Cohort: the first three, the grader-read one and Gangwon's (the referred patient's and
    # the one screened before the window are not); back within 13 months: 1st, grader's, Gangwon's.
    assert (everywhere.patients, everywhere.rescreened) == (5, 3)
    seoul = recall_coverage(scope=DashboardScope(regions=("Seoul",)), filters=filters)
    assert (seoul.patients, seoul.rescreened, seoul.share) == (4, 2, 0.5)

    client.force_login(AdminFactory())
    page = client.get(
        "/dashboard/",
        {"date_from": "2026-03-01", "date_to": "2026-03-15", "region": "Seoul"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="recall-share">50.0%<' in body and "(2 / 4)" in body
