"""Consent and the patient's rights (issue 16.3): versioned consent, withdrawal that stops all
processing and contact, erasure that pseudonymises without breaking aggregates or the audit
chain, and the retention purge."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework.test import APIClient

from accounts.audit import verify_chain
from accounts.models import AuditEvent, OutboundMessage
from config.errors import Conflict
from referrals import services as referral_services
from referrals.models import ReferralEvent
from screening import consent, services
from screening.models import ConsentEvent, ConsentText, EyeResult, Patient, Screening
from screening.recall import patient_recall_refresh
from screening.tasks import recall_reminders_send
from tests.factories import AdminFactory, HealthWorkerFactory, PatientFactory, ScreeningFactory
from tests.referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def hw():
    return HealthWorkerFactory()


@pytest.fixture
def patient(hw):
    return PatientFactory(site=hw.site_membership.site)


def submit(hw, patient, fundus_jpeg, django_capture_on_commit_callbacks) -> Screening:
    with django_capture_on_commit_callbacks(execute=False):
        return services.screening_submit(
            user=hw,
            patient_id=patient.id,
            left_image=SimpleUploadedFile("l.jpg", fundus_jpeg),
            right_image=SimpleUploadedFile("r.jpg", fundus_jpeg),
            symptoms=[],
        )


def test_registration_records_which_text_was_agreed_to_in_both_languages(client, hw):
    ConsentText.objects.all().delete()  # as after a flush: registration restores the texts
    current = consent.consent_text_current()
    assert current is not None and current.version == "2026-12"
    assert "withdraw" in current.text_en and "철회" in current.text_ko
    client.force_login(hw)
    # The registration page reads the full text to the patient, in the user's language.
    page = client.get("/screening/patients/new/").content.decode()
    assert current.text_en[:40] in page
    hw.preferred_language = "ko"
    hw.save(update_fields=["preferred_language"])
    page = client.get("/screening/patients/new/").content.decode()
    assert current.text_ko[:30] in page
    hw.preferred_language = "en"
    hw.save(update_fields=["preferred_language"])
    patient = services.patient_create(
        user=hw,
        data=services.PatientInput(
            name="김동의", birth_date=dt.date(1950, 5, 1), sex="F", consent_given=True
        ),
    )
    assert patient.consent_text == current
    (event,) = ConsentEvent.objects.filter(patient=patient)
    assert (event.action, event.text, event.recorded_by) == ("given", current, hw)
    # The consent page names the version and shows what was agreed to.
    body = client.get(
        f"/screening/patients/{patient.pk}/consent/", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "2026-12" in body and current.text_en[:40] in body


def test_existing_patients_got_the_text_they_agreed_to():
    consent.consent_text_current()  # restores the shipped texts in a flushed test database
    first = ConsentText.objects.get(version="2025-01")
    assert first.text_en.startswith("The patient consents to screening")
    assert first.effective_from < ConsentText.objects.get(version="2026-12").effective_from


def test_withdrawal_stops_the_waiting_screening_and_every_further_step(
    client, hw, patient, fundus_jpeg, django_capture_on_commit_callbacks
):
    queued = submit(hw, patient, fundus_jpeg, django_capture_on_commit_callbacks)
    assert queued.status == Screening.Status.QUEUED
    client.force_login(hw)
    url = f"/screening/patients/{patient.pk}/consent/"
    # Without the confirmation box nothing happens.
    refused = client.post(url, {"action": "withdraw"}, HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 400 and b"Tick the box" in refused.content
    patient.refresh_from_db()
    assert patient.consent_withdrawn_at is None
    done = client.post(url, {"action": "withdraw", "confirm_withdraw": "on"})
    assert done.status_code == 302
    patient.refresh_from_db()
    assert patient.consent_withdrawn_at is not None
    queued.refresh_from_db()
    assert queued.status == Screening.Status.WITHDRAWN and queued.is_finished
    # The worker's delivery of that screening infers nothing and stores nothing.
    assert services.screening_run_inference(screening_id=queued.pk) == "withdrawn"
    assert not EyeResult.objects.filter(screening=queued).exists()
    queued.refresh_from_db()
    assert queued.status == Screening.Status.WITHDRAWN and queued.attempts == 0
    # No new screening, no edit, no second withdrawal.
    with pytest.raises(Conflict) as exc:
        submit(hw, patient, fundus_jpeg, django_capture_on_commit_callbacks)
    assert exc.value.code == "consent_withdrawn"
    with pytest.raises(Conflict):
        services.patient_update(user=hw, patient_id=patient.pk, changes={"phone": "010"})
    again = client.post(url, {"action": "withdraw", "confirm_withdraw": "on"})
    assert again.status_code == 409
    assert ConsentEvent.objects.filter(patient=patient, action="withdrawn").count() == 1
    event = AuditEvent.objects.get(action="update", extra__step="consent_withdraw")
    assert event.object_ids == [str(patient.pk)] and event.extra["screenings_stopped"] == 1
    # The patient page says so and offers no new screening.
    page = client.get(f"/screening/patients/{patient.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    assert b"Consent withdrawn on" in page.content
    new_screening = reverse("screening:screening_create", args=[patient.pk])
    assert f'href="{new_screening}"'.encode() not in page.content


def test_a_result_arriving_after_the_withdrawal_is_not_stored(
    hw, patient, fundus_jpeg, django_capture_on_commit_callbacks
):
    queued = submit(hw, patient, fundus_jpeg, django_capture_on_commit_callbacks)
    # The worker claimed it and is running the model when the patient withdraws.
    Screening.objects.filter(pk=queued.pk).update(status=Screening.Status.PROCESSING, attempts=1)
    preds = services.screenings_predict(screening_ids=[queued.pk])
    consent.patient_consent_withdraw(user=hw, patient_id=patient.pk)
    assert services.screening_store_result(prediction=preds[0]) == "withdrawn"
    assert not EyeResult.objects.filter(screening=queued).exists()


def test_a_withdrawn_patient_gets_no_sms(hw, patient):
    # A normal screening 12 months ago: the recall is due today, the reminder would go out.
    screening = ScreeningFactory(patient=patient, health_worker=hw, triage="normal")
    year_ago = timezone.now() - dt.timedelta(days=365)
    Screening.objects.filter(pk=screening.pk).update(created_at=year_ago, completed_at=year_ago)
    patient_recall_refresh(patient_id=patient.pk)
    referral = ReferralFactory(screening__patient=patient, screening__health_worker=hw)
    event = ReferralEvent.objects.create(
        referral=referral,
        kind=ReferralEvent.Kind.ESCALATED,
        to_status=referral.status,
        hospital=referral.hospital,
    )
    consent.patient_consent_withdraw(user=hw, patient_id=patient.pk)
    assert recall_reminders_send.apply().get() == 0
    assert referral_services.referral_event_notify(event_id=event.pk) is False
    assert not OutboundMessage.objects.filter(to=patient.phone).exists()


def test_erasure_pseudonymises_deletes_the_photos_and_keeps_the_chain(
    hw, patient, fundus_jpeg, django_capture_on_commit_callbacks
):
    queued = submit(hw, patient, fundus_jpeg, django_capture_on_commit_callbacks)
    services.screening_run_inference(screening_id=queued.pk)
    paths = [im.path for im in queued.images.all()] + [
        r.heatmap_path for r in EyeResult.objects.filter(screening=queued) if r.heatmap_path
    ]
    assert paths and all(default_storage.exists(p) for p in paths)
    screenings_before = Screening.objects.filter(site=patient.site).count()
    admin = AdminFactory()
    api = APIClient()
    url = f"/api/v1/patients/{patient.pk}/erase/"
    # A health worker cannot erase; a wrong confirmation changes nothing.
    api.force_authenticate(hw)
    assert api.post(url, {"confirm": patient.pseudonym}, format="json").status_code == 403
    api.force_authenticate(admin)
    wrong = api.post(url, {"confirm": "P-NOTTHIS"}, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert wrong.status_code == 400 and wrong.json()["code"] == "confirm_mismatch"
    patient.refresh_from_db()
    assert patient.name and patient.erased_at is None and patient.consent_withdrawn_at is None
    with django_capture_on_commit_callbacks(execute=True):
        done = api.post(url, {"confirm": patient.pseudonym.lower()}, format="json")
    assert done.status_code == 200, done.content
    body = done.json()
    assert body["name"] == "" and body["phone"] == "" and body["erased_at"]
    patient.refresh_from_db()
    assert patient.birth_date == dt.date(patient.birth_date.year, 1, 1)
    assert patient.consent_withdrawn_at is not None and patient.address == ""
    assert not any(default_storage.exists(p) for p in paths)
    assert all(im.path == "" and im.removed_at for im in queued.images.all())
    # The results and the counts stay; the photo URL answers 404, not a broken file.
    assert Screening.objects.filter(site=patient.site).count() == screenings_before
    assert EyeResult.objects.filter(screening=queued).count() == 2
    image = queued.images.first()
    portal = Client()
    portal.force_login(hw)
    assert portal.get(f"/screening/images/{image.pk}/").status_code == 404
    assert [e.action for e in patient.consent_events.all()] == ["withdrawn", "erased"]
    erased = AuditEvent.objects.get(action="delete", extra__step="erase")
    assert erased.extra["photos_deleted"] == 2 and patient.pseudonym not in str(erased.extra)
    assert verify_chain()[1] is None
    api.force_authenticate(admin)
    assert api.post(url, {"confirm": patient.pseudonym}, format="json").status_code == 409


def test_erasure_of_another_sites_patient_is_not_found_for_a_health_worker(hw):
    other = PatientFactory()
    api = APIClient()
    api.force_authenticate(hw)
    response = api.post(f"/api/v1/patients/{other.pk}/consent/withdraw/")
    assert response.status_code == 404
    other.refresh_from_db()
    assert other.consent_withdrawn_at is None


def test_retention_deletes_old_photos_only_and_is_idempotent(
    hw, patient, fundus_jpeg, django_capture_on_commit_callbacks
):
    old = submit(hw, patient, fundus_jpeg, django_capture_on_commit_callbacks)
    Screening.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=40))
    new = ScreeningFactory(patient=patient, health_worker=hw)
    new_image = old.images.get(eye="left")
    # The same photo in a new screening: content-addressed, one file for both. It must stay.
    new.images.create(
        eye="left",
        path=new_image.path,
        sha256=new_image.sha256,
        width=new_image.width,
        height=new_image.height,
        gradable=True,
    )
    shared = new_image.path
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_images", "--days", "30", stdout=io.StringIO())
    assert all(im.path == "" and im.removed_at for im in old.images.all())
    assert new.images.get().path == shared and default_storage.exists(shared)
    assert (
        AuditEvent.objects.get(action="delete", extra__step="retention_purge").extra[
            "photos_deleted"
        ]
        == 2
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert consent.images_purge_older_than(days=30) == {"photos": 0, "heatmaps": 0}
    assert AuditEvent.objects.filter(extra__step="retention_purge").count() == 1
    with pytest.raises(CommandError), translation.override("en"):
        call_command("purge_images", "--days", "0")
    assert Patient.objects.filter(pk=patient.pk, erased_at__isnull=True).exists()


def test_an_erased_patients_fhir_export_is_still_valid(hw, patient):
    from screening.fhir import screening_bundle
    from tests.fhir_validation import r4b

    screening = ScreeningFactory(patient=patient, health_worker=hw, triage="normal")
    consent.patient_erase(user=AdminFactory(), patient_id=patient.pk, confirm=patient.pseudonym)
    screening.refresh_from_db()
    bundle = screening_bundle(screening)
    fhir_patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert "name" not in fhir_patient and fhir_patient["birthDate"] == "1955"
    r4b(bundle)
