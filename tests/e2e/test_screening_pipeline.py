"""End to end through a real Celery worker and Redis: the API, the queue, the real model."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from screening.models import EyeResult, Screening, TriageRule
from tests.factories import HealthWorkerFactory, PatientFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def wait_finished(screening_id: int, timeout: float = 90) -> Screening:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = Screening.objects.get(pk=screening_id)
        if s.is_finished:
            return s
        time.sleep(0.25)
    raise AssertionError(
        f"screening {screening_id} did not finish: {Screening.objects.get(pk=screening_id).status}"
    )


def test_screening_submitted_through_the_api_completes_on_a_real_worker(
    api_client, fundus_jpeg, celery_worker_process
):
    from rest_framework.authtoken.models import Token

    hw = HealthWorkerFactory()
    patient = PatientFactory(site=hw.site_membership.site)
    # A finding in every eye, whatever the weights say, so the worker's heatmap path runs.
    TriageRule.objects.create(class_code="D", risk_factor="", threshold=0.0001)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=hw).key}")
    r = api_client.post(
        "/api/v1/screenings/",
        {
            "patient": patient.id,
            "left_image": SimpleUploadedFile("l.jpg", fundus_jpeg, "image/jpeg"),
            "right_image": SimpleUploadedFile("r.jpg", fundus_jpeg, "image/jpeg"),
        },
        format="multipart",
    )
    assert r.status_code == 201, r.content
    screening = wait_finished(r.json()["id"])
    assert screening.status == "completed", celery_worker_process.log_text()[-3000:]
    assert screening.triage in {"normal", "medication", "referable", "urgent", "ungradable"}
    assert screening.reasons
    body = api_client.get(f"/api/v1/screenings/{screening.id}/").json()
    assert set(body["eyes"]["left"]["probabilities"]) == set("NDGCAHMO")
    assert body["model_version"]
    assert "D" in body["eyes"]["left"]["findings"]
    assert body["eyes"]["left"]["heatmap_class"] in body["eyes"]["left"]["findings"]
    heatmap = api_client.get(body["eyes"]["left"]["heatmap"])
    assert heatmap.status_code == 200 and heatmap["Content-Type"] == "image/png"
    assert EyeResult.objects.filter(screening=screening).count() == 2
    for accept in (
        "application/fhir+json",
        "application/fhir+json; fhirVersion=4.0",
        "application/json",
    ):
        again = api_client.get(f"/api/v1/screenings/{screening.id}/fhir/", HTTP_ACCEPT=accept)
        assert again.status_code == 200, (accept, again.status_code)
        assert again["Content-Type"].startswith(accept.split(";")[0])
    fhir = api_client.get(f"/api/v1/screenings/{screening.id}/fhir/").json()
    kinds = {e["resource"]["resourceType"] for e in fhir["entry"]}
    assert kinds == {"Patient", "ImagingStudy", "Observation", "DiagnosticReport"}
