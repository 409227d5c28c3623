"""The referral's FHIR export, and what all three FHIR exports share (config/fhir.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from config import fhir as shared
from referrals.models import ReferralStatus
from tests.factories import ScreeningFactory
from tests.fhir_validation import assert_fhir_js_valid, r4b
from tests.pharmacy.factories import PharmacistFactory, PharmacyFactory, pending_prescription
from tests.referrals.factories import HospitalFactory, ReferralFactory

pytestmark = pytest.mark.django_db
S = ReferralStatus


def _get(api_client, user, url: str) -> dict:
    api_client.force_authenticate(user)
    response = api_client.get(url)
    assert response.status_code == 200, (url, response.content)
    return response.json()


def _referrals() -> list:
    soon = timezone.now() + dt.timedelta(days=3)
    return [
        ReferralFactory(status=S.PROPOSED, hospital=None, sent_at=None),
        ReferralFactory(status=S.SENT),
        ReferralFactory(status=S.ACCEPTED, appointment_at=soon),
        ReferralFactory(status=S.DECLINED, decline_reason="No slots"),
        ReferralFactory(status=S.COMPLETED, appointment_at=soon, diagnosis="NPDR, moderate"),
        ReferralFactory(status=S.CANCELLED),
    ]


def test_every_referral_state_exports_valid_r4b_with_urn_uuid_links(api_client):
    for referral in _referrals():
        bundle = _get(
            api_client, referral.screening.health_worker, f"/api/v1/referrals/{referral.pk}/fhir/"
        )
        r4b(bundle)
        request, task = (e["resource"] for e in bundle["entry"])
        assert task["focus"]["reference"] == bundle["entry"][0]["fullUrl"]
        assert request["subject"]["identifier"]["system"] == shared.System.PATIENT
        assert request["identifier"] == [
            {"system": shared.System.REFERRAL, "value": str(referral.pk)}
        ]
        assert request["supportingInfo"][0]["identifier"] == {
            "system": shared.System.SCREENING,
            "value": str(referral.screening.pk),
        }
        if referral.hospital_id:
            assert request["performer"][0]["identifier"]["system"] == shared.System.HOSPITAL
            assert task["owner"]["type"] == "Organization"


def test_referral_exports_pass_the_independent_fhir_validator(api_client):
    bundles = [
        _get(api_client, r.screening.health_worker, f"/api/v1/referrals/{r.pk}/fhir/")
        for r in _referrals()
    ]
    assert_fhir_js_valid(bundles)


def test_one_patient_has_one_identifier_and_one_finding_system_in_all_three_exports(api_client):
    screening = ScreeningFactory(triage="referable", findings=["D"])
    patient = screening.patient
    referral = ReferralFactory(screening=screening, hospital=HospitalFactory())
    pharmacy = PharmacyFactory()
    prescription = pending_prescription(pharmacy, patient=patient)
    hw = screening.health_worker

    exports = {
        "screening": _get(api_client, hw, f"/api/v1/screenings/{screening.pk}/fhir/"),
        "referral": _get(api_client, hw, f"/api/v1/referrals/{referral.pk}/fhir/"),
        "prescription": _get(
            api_client,
            PharmacistFactory(pharmacy=pharmacy),
            f"/api/v1/prescriptions/{prescription.pk}/fhir/",
        ),
    }
    for name, bundle in exports.items():
        r4b(bundle)
        systems = {
            identifier["system"]
            for identifier in _patient_identifiers(bundle)
            if identifier["value"] == patient.pseudonym
        }
        assert systems == {shared.System.PATIENT}, (name, systems)
    # The referral's reason and the screening's observations use one code system for findings.
    (request, _task) = (e["resource"] for e in exports["referral"]["entry"])
    assert request["reasonCode"][0]["coding"][0]["system"] == shared.System.FINDING
    # The referral's pointer to the screening is the screening report's own identifier.
    report = next(
        e["resource"]
        for e in exports["screening"]["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    )
    assert request["supportingInfo"][0]["identifier"] in report["identifier"]


def _patient_identifiers(node: object):
    """Every identifier anywhere in the Bundle whose value could be a patient code."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "identifier":
                yield from value if isinstance(value, list) else [value]
            else:
                yield from _patient_identifiers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patient_identifiers(value)
