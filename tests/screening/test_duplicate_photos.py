"""A photo picked twice is warned about (API answer and result page), never refused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from screening.models import Screening
from tests.factories import HealthWorkerFactory, PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def other_photo(fundus_jpeg) -> bytes:
    """A second, different fundus photo that passes the quality gate (the first, mirrored)."""
    bgr = cv2.imdecode(np.frombuffer(fundus_jpeg, np.uint8), cv2.IMREAD_COLOR)
    return cv2.imencode(".jpg", cv2.flip(bgr, 1), [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


@pytest.fixture
def hw():
    return HealthWorkerFactory()


def _post(api_client, user, patient, left: bytes, right: bytes | None = None, lang: str = "en"):
    api_client.force_authenticate(user)
    data = {"patient": patient.id, "left_image": SimpleUploadedFile("l.jpg", left, "image/jpeg")}
    if right is not None:
        data["right_image"] = SimpleUploadedFile("r.jpg", right, "image/jpeg")
    return api_client.post(
        "/api/v1/screenings/", data, format="multipart", HTTP_ACCEPT_LANGUAGE=lang
    )


def test_different_photos_for_a_new_patient_give_no_warning(
    api_client, hw, fundus_jpeg, other_photo
):
    patient = PatientFactory(site=hw.site_membership.site)
    r = _post(api_client, hw, patient, fundus_jpeg, other_photo)
    assert r.status_code == 201, r.content
    assert r.json()["warnings"] == []


def test_the_same_picture_for_both_eyes_is_kept_with_a_translated_warning(
    api_client, hw, fundus_jpeg
):
    patient = PatientFactory(site=hw.site_membership.site)
    r = _post(api_client, hw, patient, fundus_jpeg, fundus_jpeg, lang="ko")
    assert r.status_code == 201, r.content
    assert Screening.objects.filter(pk=r.json()["id"]).exists()
    assert set(r.json()["eyes"]) == {"left", "right"}
    (warning,) = r.json()["warnings"]
    assert warning["code"] == "same_photo_both_eyes"
    assert "같은 사진" in warning["message"]
    english = _post(api_client, hw, PatientFactory(site=hw.site_membership.site), b"", None)
    assert english.status_code == 400  # an empty file is still refused, warnings or not


def test_a_photo_from_another_patients_earlier_screening_is_named(
    api_client, hw, fundus_jpeg, other_photo
):
    site = hw.site_membership.site
    first_patient = PatientFactory(site=site)
    first = _post(api_client, hw, first_patient, fundus_jpeg).json()
    second = _post(api_client, hw, PatientFactory(site=site), other_photo, fundus_jpeg)
    assert second.status_code == 201
    (warning,) = second.json()["warnings"]
    assert warning["code"] == "photo_used_before" and warning["eye"] == "right"
    assert warning["screening"] == first["id"]
    assert warning["patient"] == first_patient.pseudonym
    assert first_patient.pseudonym in warning["message"] and "another patient" in warning["message"]
    # The same photo at another site is none of this site's business, and tells nothing.
    elsewhere = HealthWorkerFactory()
    r = _post(
        api_client, elsewhere, PatientFactory(site=elsewhere.site_membership.site), fundus_jpeg
    )
    assert r.status_code == 201 and r.json()["warnings"] == []


def test_the_same_patients_old_photo_asks_for_a_new_one_and_the_old_result_stays_quiet(
    api_client, client, hw, fundus_jpeg
):
    patient = PatientFactory(site=hw.site_membership.site)
    first = _post(api_client, hw, patient, fundus_jpeg).json()
    again = _post(api_client, hw, patient, fundus_jpeg, lang="ko").json()
    (warning,) = again["warnings"]
    assert warning["code"] == "photo_used_before" and warning["screening"] == first["id"]
    assert "새 사진" in warning["message"]
    client.force_login(hw)
    earlier_page = client.get(f"/screening/screenings/{first['id']}/").content.decode()
    assert "data-code=" not in earlier_page  # an earlier screening never warns about a later one
    later_page = client.get(
        f"/screening/screenings/{again['id']}/", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert 'data-code="photo_used_before"' in later_page
    assert f"/screening/screenings/{first['id']}/" in later_page


def test_portal_upload_of_one_file_twice_lands_on_a_result_page_with_the_warning(
    client, hw, fundus_jpeg
):
    hw.preferred_language = "ko"  # the portal follows the user's saved language
    hw.save(update_fields=["preferred_language"])
    patient = PatientFactory(site=hw.site_membership.site)
    client.force_login(hw)
    r = client.post(
        f"/screening/patients/{patient.id}/screenings/new/",
        {
            "left_image": SimpleUploadedFile("l.jpg", fundus_jpeg, "image/jpeg"),
            "right_image": SimpleUploadedFile("r.jpg", fundus_jpeg, "image/jpeg"),
        },
    )
    assert r.status_code == 302
    page = client.get(r["Location"])
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-code="same_photo_both_eyes"' in body
    assert "사진을 확인하세요" in body and "같은 사진" in body
