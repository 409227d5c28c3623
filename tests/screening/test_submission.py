"""Submitting photos: validation and the quality gate inside the request, nothing half-written."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from screening.models import Screening, ScreeningImage
from tests.factories import HealthWorkerFactory, PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def hw_and_patient():
    hw = HealthWorkerFactory()
    return hw, PatientFactory(site=hw.site_membership.site)


def upload(
    data: bytes, name: str = "eye.jpg", content_type: str = "image/jpeg"
) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type)


def stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_submit_both_eyes_is_201_queued_with_images(
    api_client, hw_and_patient, fundus_jpeg, settings
):
    hw, patient = hw_and_patient
    api_client.force_authenticate(hw)
    r = api_client.post(
        "/api/v1/screenings/",
        {
            "patient": patient.id,
            "left_image": upload(fundus_jpeg),
            "right_image": upload(fundus_jpeg),
            "symptoms": ["dryness"],
        },
        format="multipart",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "queued"
    assert set(body["eyes"]) == {"left", "right"}
    assert ScreeningImage.objects.filter(screening_id=body["id"]).count() == 2
    # Identical bytes are stored once (content-addressed), under a server-generated name.
    files = stored_files(settings)
    assert len(files) == 1 and files[0].name != "eye.jpg"


def test_exif_is_gone_from_the_stored_photo(api_client, hw_and_patient, fundus_jpeg, settings):
    hw, patient = hw_and_patient
    img = Image.open(io.BytesIO(fundus_jpeg))
    exif = Image.Exif()
    exif[0x013B] = "Patient Name"  # Artist
    exif.get_ifd(0x8825)[2] = (37.0, 33.0, 0.0)  # GPS latitude
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    assert b"Patient Name" in buf.getvalue()
    api_client.force_authenticate(hw)
    r = api_client.post(
        "/api/v1/screenings/",
        {"patient": patient.id, "left_image": upload(buf.getvalue())},
        format="multipart",
    )
    assert r.status_code == 201, r.content
    (stored,) = stored_files(settings)
    data = stored.read_bytes()
    assert b"Patient Name" not in data and b"Exif" not in data


def _blurred(fundus_jpeg: bytes) -> bytes:
    rgb = cv2.imdecode(np.frombuffer(fundus_jpeg, np.uint8), cv2.IMREAD_COLOR)
    ok, buf = cv2.imencode(".jpg", cv2.GaussianBlur(rgb, (0, 0), 40))
    return buf.tobytes()


def test_blurred_photo_is_refused_with_a_retake_reason(
    api_client, hw_and_patient, fundus_jpeg, settings
):
    hw, patient = hw_and_patient
    api_client.force_authenticate(hw)
    r = api_client.post(
        "/api/v1/screenings/",
        {
            "patient": patient.id,
            "left_image": upload(_blurred(fundus_jpeg)),
            "right_image": upload(fundus_jpeg),
        },
        format="multipart",
    )
    assert r.status_code == 400
    assert r.json()["left_image"][0]["code"] == "blurred"
    assert Screening.objects.count() == 0 and stored_files(settings) == []


def test_ungradable_photo_is_accepted_after_a_retake_is_confirmed(
    api_client, hw_and_patient, fundus_jpeg
):
    hw, patient = hw_and_patient
    api_client.force_authenticate(hw)
    r = api_client.post(
        "/api/v1/screenings/",
        {
            "patient": patient.id,
            "left_image": upload(_blurred(fundus_jpeg)),
            "accept_ungradable": True,
        },
        format="multipart",
    )
    assert r.status_code == 201
    assert r.json()["eyes"]["left"]["gradable"] is False


def _png_then_html() -> bytes:
    ok, buf = cv2.imencode(".png", np.zeros((300, 300, 3), np.uint8))
    return buf.tobytes() + b"<html><script>alert(1)</script></html>"


BAD = {
    "empty": b"",
    "html_named_jpg": b"<html><body>hello</body></html>",
    "pdf": b"%PDF-1.4\n1 0 obj<<>>endobj\n",
    "gif": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
    "truncated_jpeg": None,  # filled in from the real photo
    "one_pixel": None,
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_bytes_are_400_and_leave_nothing(
    api_client, hw_and_patient, fundus_jpeg, settings, kind
):
    hw, patient = hw_and_patient
    data = BAD[kind]
    if kind == "truncated_jpeg":
        data = fundus_jpeg[: len(fundus_jpeg) // 3]
    if kind == "one_pixel":
        data = cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes()
    api_client.force_authenticate(hw)
    r = api_client.post(
        "/api/v1/screenings/",
        {"patient": patient.id, "left_image": upload(data, "../../etc/passwd.jpg")},
        format="multipart",
    )
    assert r.status_code == 400, (kind, r.content)
    assert r.json()["left_image"][0]["message"]
    assert Screening.objects.count() == 0 and stored_files(settings) == []


def test_too_large_upload_is_400(api_client, hw_and_patient, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    hw, patient = hw_and_patient
    api_client.force_authenticate(hw)
    r = api_client.post(
        "/api/v1/screenings/",
        {"patient": patient.id, "left_image": upload(b"\xff\xd8\xff" + b"0" * 2000)},
        format="multipart",
    )
    assert r.status_code == 400
    assert r.json()["left_image"][0]["code"] == "too_large"


def test_no_image_is_400(api_client, hw_and_patient):
    hw, patient = hw_and_patient
    api_client.force_authenticate(hw)
    r = api_client.post("/api/v1/screenings/", {"patient": patient.id}, format="multipart")
    assert r.status_code == 400


def test_unknown_symptom_and_unknown_field_are_400(api_client, hw_and_patient, fundus_jpeg):
    hw, patient = hw_and_patient
    api_client.force_authenticate(hw)
    r = api_client.post(
        "/api/v1/screenings/",
        {"patient": patient.id, "left_image": upload(fundus_jpeg), "symptoms": ["telepathy"]},
        format="multipart",
    )
    assert r.status_code == 400
    r = api_client.post(
        "/api/v1/screenings/",
        {"patient": patient.id, "left_image": upload(fundus_jpeg), "status": "completed"},
        format="multipart",
    )
    assert r.status_code == 400
    assert Screening.objects.count() == 0


def test_cannot_screen_another_sites_patient(api_client, fundus_jpeg):
    api_client.force_authenticate(HealthWorkerFactory())
    other = PatientFactory()
    r = api_client.post(
        "/api/v1/screenings/",
        {"patient": other.id, "left_image": upload(fundus_jpeg)},
        format="multipart",
    )
    assert r.status_code == 404
    assert Screening.objects.count() == 0


def test_png_followed_by_html_is_stored_without_the_html(api_client, hw_and_patient, settings):
    hw, patient = hw_and_patient
    api_client.force_authenticate(hw)
    r = api_client.post(
        "/api/v1/screenings/",
        {
            "patient": patient.id,
            "left_image": upload(_png_then_html(), "x.png", "image/png"),
            "accept_ungradable": True,
        },
        format="multipart",
    )
    # A black square is no fundus: refused unless the retake is confirmed; then stored re-encoded.
    assert r.status_code == 201, r.content
    (stored,) = stored_files(settings)
    assert b"<script>" not in stored.read_bytes()
