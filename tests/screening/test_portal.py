"""The health worker's portal pages: rendering, scoping, the retake message, duplicates."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from screening.models import EyeResult, Patient, Screening, ScreeningImage
from tests.factories import HealthWorkerFactory, PatientFactory, ScreeningFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def hw(client):
    user = HealthWorkerFactory()
    client.force_login(user)
    return user


def test_pages_render_for_the_health_worker(client, hw):
    patient = PatientFactory(site=hw.site_membership.site)
    screening = ScreeningFactory(
        patient=patient,
        health_worker=hw,
        triage="referable",
        reasons=[
            {"code": "finding", "eye": "left", "class": "D", "probability": 0.7, "threshold": 0.3}
        ],
        findings=["D"],
    )
    for url in [
        "/screening/",
        "/screening/patients/",
        "/screening/patients/new/",
        f"/screening/patients/{patient.id}/",
        f"/screening/patients/{patient.id}/screenings/new/",
        f"/screening/screenings/{screening.id}/",
    ]:
        r = client.get(url)
        assert r.status_code == 200, url
    body = client.get(f"/screening/screenings/{screening.id}/").content.decode()
    assert "70%" in body and "30%" in body  # the reason, with probability and threshold


def test_other_sites_pages_are_404(client, hw):
    other = ScreeningFactory()
    assert client.get(f"/screening/patients/{other.patient_id}/").status_code == 404
    assert client.get(f"/screening/screenings/{other.id}/").status_code == 404
    assert client.get(f"/screening/screenings/{other.id}/status/").status_code == 404


def test_other_sites_photo_and_heatmap_are_404(client, hw, settings, tmp_path):
    other = ScreeningFactory()
    image = ScreeningImage.objects.create(
        screening=other,
        eye="left",
        path="fundus/aa/x.jpg",
        sha256="0" * 64,
        width=10,
        height=10,
        gradable=True,
    )
    result = EyeResult.objects.create(
        screening=other,
        eye="left",
        probabilities={},
        top_class="N",
        heatmap_path="heatmaps/aa/x.png",
        model_version="v",
    )
    assert client.get(f"/screening/images/{image.id}/").status_code == 404
    assert client.get(f"/screening/heatmaps/{result.id}/").status_code == 404


def test_anonymous_is_sent_to_login(client):
    r = client.get("/screening/")
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]


def test_registration_form_warns_about_a_duplicate_and_links_the_existing_record(client, hw):
    existing = PatientFactory(site=hw.site_membership.site, name="김순자", phone="010-1111-2222")
    data = {
        "name": "김순자",
        "birth_date": existing.birth_date.isoformat(),
        "sex": "F",
        "phone": "",
        "consent_given": "on",
    }
    r = client.post("/screening/patients/new/", data)
    assert r.status_code == 409
    assert f"/screening/patients/{existing.id}/" in r.content.decode()
    assert Patient.objects.count() == 1
    r = client.post("/screening/patients/new/", data | {"allow_duplicate": "on"})
    assert r.status_code == 302
    assert Patient.objects.count() == 2


def test_blurred_upload_shows_the_retake_reason_at_once(client, hw, fundus_jpeg):
    import cv2
    import numpy as np

    patient = PatientFactory(site=hw.site_membership.site)
    bgr = cv2.imdecode(np.frombuffer(fundus_jpeg, np.uint8), cv2.IMREAD_COLOR)
    blurred = cv2.imencode(".jpg", cv2.GaussianBlur(bgr, (0, 0), 40))[1].tobytes()
    r = client.post(
        f"/screening/patients/{patient.id}/screenings/new/",
        {"left_image": SimpleUploadedFile("l.jpg", blurred, "image/jpeg")},
    )
    assert r.status_code == 400
    assert 'data-code="blurred"' in r.content.decode()
    assert Screening.objects.count() == 0


def test_worklist_query_count_does_not_grow_with_rows(client, hw, django_assert_max_num_queries):
    site = hw.site_membership.site
    for _ in range(3):
        ScreeningFactory(patient=PatientFactory(site=site), health_worker=hw)
    with django_assert_max_num_queries(30) as small:
        client.get("/screening/")
    for _ in range(20):
        ScreeningFactory(patient=PatientFactory(site=site), health_worker=hw)
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get("/screening/")


def test_a_refused_eye_does_not_cost_the_accepted_one(client, hw, fundus_jpeg):
    """A blurred left eye is refused; the right eye that passed is kept (stored, carried as a
    signed token), so the retake sends only the left eye."""
    import re

    import cv2
    import numpy as np

    patient = PatientFactory(site=hw.site_membership.site)
    url = f"/screening/patients/{patient.id}/screenings/new/"
    bgr = cv2.imdecode(np.frombuffer(fundus_jpeg, np.uint8), cv2.IMREAD_COLOR)
    blurred = cv2.imencode(".jpg", cv2.GaussianBlur(bgr, (0, 0), 40))[1].tobytes()
    r = client.post(
        url,
        {
            "left_image": SimpleUploadedFile("l.jpg", blurred, "image/jpeg"),
            "right_image": SimpleUploadedFile("r.jpg", fundus_jpeg, "image/jpeg"),
        },
    )
    assert r.status_code == 400
    html = r.content.decode()
    token = re.search(r'name="right_kept" value="([^"]+)"', html).group(1)
    assert 'name="left_kept"' not in html and 'data-eye="right"' in html
    assert Screening.objects.count() == 0

    # The token is bound to this patient: on another patient's form it is ignored.
    other = PatientFactory(site=hw.site_membership.site)
    r = client.post(f"/screening/patients/{other.id}/screenings/new/", {"right_kept": token})
    assert r.status_code == 400 and Screening.objects.count() == 0
    # A forged token is ignored too.
    r = client.post(url, {"right_kept": token[:-2] + "xx"})
    assert r.status_code == 400 and Screening.objects.count() == 0

    r = client.post(
        url,
        {"left_image": SimpleUploadedFile("l.jpg", fundus_jpeg, "image/jpeg"), "right_kept": token},
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    screening = Screening.objects.get()
    assert sorted(screening.images.values_list("eye", flat=True)) == ["left", "right"]


def test_a_pharmacist_on_the_health_workers_page_is_shown_the_way_home(client):
    from accounts.models import Role, User

    pharmacist = User.objects.create_user("rx-lost", role=Role.PHARMACIST, password="x")
    pharmacist.preferred_language = "en"
    pharmacist.save()
    client.force_login(pharmacist)
    r = client.get("/screening/")
    assert r.status_code == 403
    html = r.content.decode()
    assert "No role assigned" not in html
    assert "This page is for health workers" in html and "Pharmacist" in html
    assert 'href="/"' in html
