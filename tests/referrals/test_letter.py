"""The printable referral letter (issue 16, item 4): rendered for real and read back as text."""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from django.utils import formats, timezone, translation

from accounts.models import AuditEvent
from referrals import letter
from referrals.models import Referral, ReferralStatus
from screening import uploads
from screening.models import EyeResult, ScreeningImage
from tests.factories import HealthWorkerFactory, PatientFactory, ScreeningFactory, SiteFactory
from tests.referrals.factories import HospitalFactory, HospitalStaffFactory, ReferralFactory

pytestmark = pytest.mark.django_db

MODEL_VERSION = "effnet-lite1-2025.06-test"
APPOINTMENT = dt.datetime(2031, 5, 20, 14, 30)


def pdf_text(pdf: bytes, tmp_path) -> str:
    """The PDF's text, whitespace collapsed: pdftotext (poppler) when installed, else pypdf."""
    if shutil.which("pdftotext"):
        path = tmp_path / "letter.pdf"
        path.write_bytes(pdf)
        out = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True
        ).stdout.decode()
    else:
        out = pypdf_text(pdf)
    return " ".join(out.split())


def pypdf_text(pdf: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)


def _heatmap_png(seed: int) -> bytes:
    ramp = np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (256, 1))
    colour = cv2.applyColorMap(np.roll(ramp, seed * 40, axis=1), cv2.COLORMAP_JET)
    ok, buf = cv2.imencode(".png", colour)
    assert ok
    return buf.tobytes()


@pytest.fixture
def referral(fundus_jpeg: bytes) -> Referral:
    site = SiteFactory(name="종로구 보건소", name_en="Jongno Health Centre")
    worker = HealthWorkerFactory(site=site, first_name="박민수", last_name="")
    patient = PatientFactory(site=site, name="김영희", phone="010-1234-5678")
    screening = ScreeningFactory(
        patient=patient,
        health_worker=worker,
        triage="referable",
        findings=["D", "G"],
        model_version=MODEL_VERSION,
        reasons=[
            {
                "code": "finding",
                "eye": "right",
                "class": "D",
                "probability": 0.91,
                "threshold": 0.5,
            },
            {"code": "finding", "eye": "left", "class": "G", "probability": 0.72, "threshold": 0.5},
        ],
    )
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(fundus_jpeg, np.uint8), 1), cv2.COLOR_BGR2RGB)
    for seed, (eye, code) in enumerate((("right", "D"), ("left", "G"))):
        photo = uploads.store_rgb(np.ascontiguousarray(rgb if eye == "right" else rgb[:, ::-1]))
        heat = uploads.store_bytes(_heatmap_png(seed), suffix=".png", subdir="heatmaps")
        ScreeningImage.objects.create(
            screening=screening,
            eye=eye,
            path=photo.path,
            sha256=photo.sha256,
            width=photo.width,
            height=photo.height,
            gradable=True,
        )
        EyeResult.objects.create(
            screening=screening,
            eye=eye,
            probabilities={code: 0.9, "N": 0.1},
            top_class=code,
            findings=[code],
            heatmap_path=heat.path,
            heatmap_class=code,
            model_version=MODEL_VERSION,
        )
    hospital = HospitalFactory(
        name="서울대학교병원",
        name_en="Seoul National University Hospital",
        address="서울 종로구 대학로 101",
        phone="02-2072-2114",
    )
    return ReferralFactory(
        screening=screening,
        hospital=hospital,
        status=ReferralStatus.ACCEPTED,
        appointment_at=timezone.make_aware(APPOINTMENT),
        responded_at=timezone.now(),
    )


def _appointment_text(language: str) -> str:
    with translation.override(language):
        value = formats.date_format(
            timezone.localtime(timezone.make_aware(APPOINTMENT)), "DATETIME_FORMAT"
        )
    return " ".join(value.split())


@pytest.mark.parametrize(
    "language,expected",
    [
        ("ko", ["당뇨망막병증", "녹내장", "환자", "오른쪽 눈", "왼쪽 눈"]),
        (
            "en",
            [
                "Diabetic retinopathy",
                "Glaucoma",
                "Patient",
                "Right eye",
                "Left eye",
                "Seoul National University Hospital",
            ],
        ),
    ],
)
def test_the_letter_holds_patient_findings_model_hospital_and_appointment(
    referral, tmp_path, language, expected
):
    pdf = letter.referral_letter_pdf(referral=referral, language=language)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf, tmp_path)
    patient = referral.screening.patient
    for needle in [
        "EyeBridge",
        patient.name,
        patient.pseudonym,
        patient.phone,
        "박민수",
        "종로구 보건소",
        MODEL_VERSION,
        "서울대학교병원",
        "서울 종로구 대학로 101",
        "02-2072-2114",
        _appointment_text(language),
        *expected,
    ]:
        assert needle in text, (needle, text)
    # The CJK font is embedded (a subset, so the glyphs print anywhere), and all four images.
    font = letter.letter_font()
    assert font.face_name.encode() in pdf
    assert b"/FontFile2" in pdf
    assert pdf.count(b"/Subtype /Image") == 4
    assert len(pdf) < 1_500_000


def test_pypdf_reads_the_korean_letter_too(referral):
    """The fallback extractor where poppler is not installed: the same text comes back."""
    text = pypdf_text(letter.referral_letter_pdf(referral=referral, language="ko"))
    assert "김영희" in text and "당뇨망막병증" in text and MODEL_VERSION in text


def test_an_unbooked_referral_says_so_and_an_unreadable_photo_does_not_break_it(referral, tmp_path):
    Referral.objects.filter(pk=referral.pk).update(
        status=ReferralStatus.SENT, appointment_at=None, responded_at=None
    )
    referral.refresh_from_db()
    # One heatmap that is not in the storage, one whose bytes are a damaged PNG.
    EyeResult.objects.filter(screening=referral.screening, eye="left").update(
        heatmap_path="heatmaps/missing/none.png"
    )
    broken = uploads.store_bytes(_heatmap_png(5)[:200], suffix=".png", subdir="heatmaps")
    EyeResult.objects.filter(screening=referral.screening, eye="right").update(
        heatmap_path=broken.path
    )
    pdf = letter.referral_letter_pdf(referral=referral, language="en")
    text = pdf_text(pdf, tmp_path)
    assert "Not yet booked" in text and text.count("Photo not available") == 2
    assert pdf.count(b"/Subtype /Image") == 2


def test_without_a_font_the_letter_is_refused_not_printed_in_boxes(
    referral, client, settings, monkeypatch
):
    monkeypatch.delenv("REFERRAL_LETTER_FONT", raising=False)
    settings.REFERRAL_LETTER_FONT = ""
    monkeypatch.setattr(
        letter, "FONT_CANDIDATES", (("/nonexistent/a.ttf", "/nonexistent/b.ttf", 0),)
    )
    with pytest.raises(letter.LetterFontUnavailable):
        letter.referral_letter_pdf(referral=referral, language="ko")
    client.force_login(referral.screening.health_worker)
    response = client.get(f"/referrals/{referral.pk}/letter/?lang=ko")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert "no font for Korean text" in response.content.decode()


def test_a_configured_font_replaces_the_list(referral, settings):
    installed = [c[0] for c in letter.FONT_CANDIDATES if os.path.isfile(c[0])]
    settings.REFERRAL_LETTER_FONT = installed[-1]
    font = letter.letter_font()
    assert font.regular.endswith(f"{os.path.basename(installed[-1])}-0")
    assert font.face_name.encode() in letter.referral_letter_pdf(referral=referral, language="en")
    # A configured font that cannot be loaded is an error, not a quiet switch to another face.
    settings.REFERRAL_LETTER_FONT = "/nonexistent/configured.ttf"
    with pytest.raises(letter.LetterFontUnavailable):
        letter.letter_font()


def test_health_worker_and_receiving_hospital_download_it(referral, client):
    for user in (
        referral.screening.health_worker,
        HospitalStaffFactory(hospital=referral.hospital),
    ):
        client.force_login(user)
        response = client.get(f"/referrals/{referral.pk}/letter/?lang=en")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert (
            response["Content-Disposition"]
            == f'attachment; filename="referral-{referral.pk}-en.pdf"'
        )
        assert response["Cache-Control"] == "private, no-store"
        assert response.content.startswith(b"%PDF-")
    event = AuditEvent.objects.filter(url_name="referrals:letter").latest("id")
    assert (event.action, event.object_type, event.object_ids) == (
        "export",
        "referral",
        [str(referral.pk)],
    )


def test_the_default_language_is_the_users(referral, client):
    worker = referral.screening.health_worker
    worker.preferred_language = "ko"
    worker.save(update_fields=["preferred_language"])
    client.force_login(worker)
    response = client.get(f"/referrals/{referral.pk}/letter/")
    assert response.status_code == 200
    assert f'filename="referral-{referral.pk}-ko.pdf"' in response["Content-Disposition"]


def test_other_organisations_get_404_and_a_bad_language_400(referral, client):
    client.force_login(HealthWorkerFactory(site=SiteFactory()))
    assert client.get(f"/referrals/{referral.pk}/letter/").status_code == 404
    client.force_login(HospitalStaffFactory(hospital=HospitalFactory()))
    assert client.get(f"/referrals/{referral.pk}/letter/").status_code == 404
    # A bad language on a foreign referral is still a 404: the scope is checked first.
    assert client.get(f"/referrals/{referral.pk}/letter/?lang=fr").status_code == 404
    client.force_login(referral.screening.health_worker)
    response = client.get(f"/referrals/{referral.pk}/letter/?lang=fr")
    assert response.status_code == 400
    assert "Unknown language" in response.content.decode()
    assert client.post(f"/referrals/{referral.pk}/letter/").status_code == 405
    client.logout()
    response = client.get(f"/referrals/{referral.pk}/letter/")
    assert response.status_code == 302 and "/accounts/" in response["Location"]


def test_a_hospital_that_declined_gets_the_letter_without_the_photographs(
    referral, client, tmp_path
):
    Referral.objects.filter(pk=referral.pk).update(
        status=ReferralStatus.DECLINED, decline_reason="No retina clinic", appointment_at=None
    )
    client.force_login(HospitalStaffFactory(hospital=referral.hospital))
    response = client.get(f"/referrals/{referral.pk}/letter/?lang=en")
    assert response.status_code == 200
    assert b"/Subtype /Image" not in response.content
    assert "Photos are included only while" in pdf_text(response.content, tmp_path)


def test_the_referral_page_and_panel_link_the_letter(referral, client):
    from screening import extensions
    from tests.extension_helpers import render_registered

    client.force_login(referral.screening.health_worker)
    html = client.get(f"/referrals/{referral.pk}/").content.decode()
    assert f"/referrals/{referral.pk}/letter/?lang=ko" in html
    assert f"/referrals/{referral.pk}/letter/?lang=en" in html
    panel = render_registered(extensions.panels(), "referrals", referral.screening)
    assert f"/referrals/{referral.pk}/letter/?lang=ko" in panel
