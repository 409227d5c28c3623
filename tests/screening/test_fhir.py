"""The screening's FHIR export: R4B, declared; one identifier system; urn:uuid references; and
DICOM UIDs that are unique per study, series and instance, even for the same photo."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from config import fhir as shared
from screening import services
from screening.models import EyeResult, Screening, ScreeningImage
from tests.factories import HealthWorkerFactory, PatientFactory
from tests.fhir_validation import assert_fhir_js_valid, fhir_js, r4b

pytestmark = pytest.mark.django_db
UID = re.compile(r"^2\.25\.[1-9][0-9]*$")


def _submit(hw, patient, photo: bytes) -> Screening:
    return services.screening_submit(
        user=hw,
        patient_id=patient.id,
        left_image=SimpleUploadedFile("l.jpg", photo, "image/jpeg"),
        right_image=SimpleUploadedFile("r.jpg", photo, "image/jpeg"),
    )


def _with_results(screening: Screening) -> Screening:
    for eye in ("left", "right"):
        EyeResult.objects.create(
            screening=screening,
            eye=eye,
            probabilities={"N": 0.2, "D": 0.7},
            top_class="D",
            findings=["D"],
            model_version="test-1",
        )
    Screening.objects.filter(pk=screening.pk).update(
        status=Screening.Status.COMPLETED, triage="referable", findings=["D"]
    )
    return screening


def _export(api_client, user, screening: Screening, **headers):
    api_client.force_authenticate(user)
    return api_client.get(f"/api/v1/screenings/{screening.pk}/fhir/", **headers)


def _study(bundle: dict) -> dict:
    (study,) = (
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ImagingStudy"
    )
    return study


def test_the_same_photo_for_three_patients_gives_every_study_series_and_instance_its_own_uid(
    api_client, fundus_jpeg
):
    hw = HealthWorkerFactory()
    site = hw.site_membership.site
    screenings = [_submit(hw, PatientFactory(site=site), fundus_jpeg) for _ in range(3)]

    studies, series, instances = [], [], []
    for screening in screenings:
        response = _export(api_client, hw, screening)
        assert response.status_code == 200
        study = _study(response.json())
        studies.append(study["identifier"][0]["value"].removeprefix("urn:oid:"))
        assert study["identifier"][0]["system"] == "urn:dicom:uid"
        assert [s["bodySite"]["code"] for s in study["series"]] == ["8966001", "18944008"]
        series += [s["uid"] for s in study["series"]]
        instances += [i["uid"] for s in study["series"] for i in s["instance"]]
        # What is exported is what is stored, so a second export gives the same UIDs.
        assert studies[-1] == Screening.objects.get(pk=screening.pk).study_instance_uid
        assert series[-2:] == list(
            ScreeningImage.objects.filter(screening=screening)
            .order_by("eye")
            .values_list("series_instance_uid", flat=True)
        )
    # Three screenings of one photo: same bytes on every image, and still 3 + 6 + 6 distinct UIDs.
    assert ScreeningImage.objects.values("sha256").distinct().count() == 1
    uids = studies + series + instances
    assert len(uids) == 15 and len(set(uids)) == 15
    assert all(UID.match(u) and len(u) <= 64 for u in uids), uids
    again = _study(_export(api_client, hw, screenings[0]).json())
    assert again["identifier"][0]["value"] == f"urn:oid:{studies[0]}"


def test_two_images_cannot_share_a_uid_in_the_database(fundus_jpeg):
    from django.db import IntegrityError, transaction

    hw = HealthWorkerFactory()
    screening = _submit(hw, PatientFactory(site=hw.site_membership.site), fundus_jpeg)
    left, right = ScreeningImage.objects.filter(screening=screening).order_by("eye")
    with pytest.raises(IntegrityError), transaction.atomic():
        ScreeningImage.objects.filter(pk=right.pk).update(
            series_instance_uid=left.series_instance_uid
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        ScreeningImage.objects.filter(pk=right.pk).update(sop_instance_uid=left.sop_instance_uid)


def test_export_declares_r4b_and_uses_one_patient_identifier_and_urn_uuid_references(
    api_client, fundus_jpeg
):
    hw = HealthWorkerFactory()
    patient = PatientFactory(site=hw.site_membership.site)
    screening = _with_results(_submit(hw, patient, fundus_jpeg))
    response = _export(api_client, hw, screening, HTTP_ACCEPT="application/fhir+json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json; fhirVersion=4.3"
    bundle = response.json()
    r4b(response.content)  # meta.profile, urn:uuid fullUrls, every reference resolves
    assert bundle["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/Bundle|4.3.0"]
    assert "urn:eyebridge" not in response.content.decode()
    resources = {e["resource"]["resourceType"]: e for e in bundle["entry"]}
    fhir_patient = resources["Patient"]["resource"]
    assert fhir_patient["identifier"] == [
        {"system": shared.System.PATIENT, "value": patient.pseudonym}
    ]
    report = resources["DiagnosticReport"]["resource"]
    assert report["subject"]["reference"] == resources["Patient"]["fullUrl"]
    assert report["subject"]["identifier"]["system"] == shared.System.PATIENT
    assert report["imagingStudy"][0]["reference"] == resources["ImagingStudy"]["fullUrl"]
    assert report["identifier"] == [{"system": shared.System.SCREENING, "value": str(screening.pk)}]
    observations = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert len(observations) == 4 and len(report["result"]) == 4
    assert observations[0]["resource"]["code"]["coding"][0]["system"] == shared.System.FINDING
    # The FHIR version is declared whatever the client asked for; plain JSON still works.
    for accept, content_type in (
        ("application/fhir+json; fhirVersion=4.0", "application/fhir+json; fhirVersion=4.3"),
        ("application/json", "application/json"),
    ):
        again = _export(api_client, hw, screening, HTTP_ACCEPT=accept)
        assert again.status_code == 200 and again["Content-Type"] == content_type
        assert again.json()["meta"]["profile"] == bundle["meta"]["profile"]


def test_screening_export_passes_the_independent_fhir_validator(api_client, fundus_jpeg):
    hw = HealthWorkerFactory()
    patient = PatientFactory(site=hw.site_membership.site)
    finished = _with_results(_submit(hw, patient, fundus_jpeg))
    queued = _submit(hw, patient, fundus_jpeg)  # no results yet: no Observation
    bundles = [_export(api_client, hw, s).json() for s in (finished, queued)]
    assert_fhir_js_valid(bundles)
    # The validator is live: a wrong code inside the Bundle is caught.
    broken = bundles[0]
    broken["entry"][0]["resource"]["gender"] = "feminine"
    (verdict,) = fhir_js([broken])
    assert not verdict["valid"] and "Patient.gender" in str(verdict["messages"])


def test_openapi_says_r4b_for_the_fhir_exports(api_client):
    from tests.factories import AdminFactory

    api_client.force_authenticate(AdminFactory())
    schema = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    for path in (
        "/api/v1/screenings/{screening_id}/fhir/",
        "/api/v1/prescriptions/{prescription_id}/fhir/",
        "/api/v1/referrals/{referral_id}/fhir/",
    ):
        operation = schema["paths"][path]["get"]
        ok = operation["responses"]["200"]
        assert "R4B (4.3.0)" in ok["description"], path
        assert "fhirVersion=4.3" in ok["description"], path
        assert set(ok["content"]) == {"application/fhir+json", "application/json"}
        assert " R4 " not in operation.get("description", "") + " ", path
