"""Proposal by protocol, health-worker requests, the pharmacist's decision, scoping, FHIR."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import OutboundMessage
from config import fhir as fhir_shared
from config.errors import Conflict, InvalidInput, NotFound, Unprocessable
from pharmacy import codes, services
from pharmacy.models import DispenseCode, Prescription
from tests.factories import (
    AdminFactory,
    HealthWorkerFactory,
    PatientFactory,
    ScreeningFactory,
    SiteFactory,
)
from tests.fhir_validation import assert_fhir_js_valid, r4b
from tests.pharmacy.conftest import present
from tests.pharmacy.factories import (
    COUNSELLING,
    MedicationFactory,
    PharmacistFactory,
    PharmacyFactory,
    approved_prescription,
    link,
    pending_prescription,
    protocol,
    stock,
)

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


# --- proposal by protocol -------------------------------------------------------------------------


def test_dryness_with_normal_fundus_proposes_artificial_tears_once(pharmacy, medication):
    itch = MedicationFactory()
    protocol(medication, symptom="dryness")
    protocol(itch, symptom="itching")
    screening = ScreeningFactory(triage="normal", symptoms=["dryness"])
    link(pharmacy, screening.site)

    first = services.prescription_propose_for_screening(screening_id=screening.pk)
    again = services.prescription_propose_for_screening(screening_id=screening.pk)

    assert first is not None and again.pk == first.pk
    assert Prescription.objects.count() == 1
    assert [(i.medication_id, i.quantity) for i in first.items.all()] == [(medication.pk, 1)]
    assert first.status == Prescription.Status.PENDING_APPROVAL
    assert first.pharmacy == pharmacy


@pytest.mark.parametrize("triage", ["referable", "urgent", "ungradable"])
def test_referable_screenings_get_no_proposal(pharmacy, medication, triage):
    protocol(
        medication,
        symptom="dryness",
        triage=("normal", "medication", "referable", "urgent", "ungradable"),
    )
    screening = ScreeningFactory(triage=triage, symptoms=["dryness"])
    link(pharmacy, screening.site)
    assert services.prescription_propose_for_screening(screening_id=screening.pk) is None
    assert not Prescription.objects.exists()


def test_no_matching_symptom_or_no_pharmacy_means_no_proposal(pharmacy, medication):
    protocol(medication, symptom="dryness")
    unlinked = ScreeningFactory(triage="normal", symptoms=["dryness"])
    no_symptom = ScreeningFactory(triage="normal", symptoms=["floaters"])
    link(pharmacy, no_symptom.site)
    assert services.prescription_propose_for_screening(screening_id=unlinked.pk) is None
    assert services.prescription_propose_for_screening(screening_id=no_symptom.pk) is None
    assert services.prescription_propose_for_screening(screening_id=987654) is None


def test_routing_picks_the_nearest_linked_pharmacy(medication):
    protocol(medication, symptom="itching")
    site = SiteFactory(latitude=35.1796, longitude=129.0756)  # Busan
    seoul = PharmacyFactory(latitude=37.5665, longitude=126.9780)
    busan = PharmacyFactory(latitude=35.18, longitude=129.07)
    link(seoul, site)
    link(busan, site)
    screening = ScreeningFactory(
        patient=PatientFactory(site=site), triage="medication", symptoms=["itching"]
    )
    assert services.prescription_propose_for_screening(screening_id=screening.pk).pharmacy == busan


# --- health worker request --------------------------------------------------------------------------


def test_health_worker_requests_an_item_for_own_site(pharmacy, medication):
    screening = ScreeningFactory()
    link(pharmacy, screening.site)
    response = client_for(screening.health_worker).post(
        "/api/v1/prescriptions/request/",
        {
            "screening": screening.pk,
            "medication": medication.pk,
            "quantity": 2,
            "note": "건조함 호소",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["source"] == "user"
    assert response.json()["items"][0]["quantity"] == 2


def test_request_for_another_sites_screening_is_404_and_bad_quantity_400(pharmacy, medication):
    mine = ScreeningFactory()
    theirs = ScreeningFactory()
    link(pharmacy, mine.site)
    link(pharmacy, theirs.site)
    client = client_for(mine.health_worker)
    url = "/api/v1/prescriptions/request/"
    assert (
        client.post(
            url, {"screening": theirs.pk, "medication": medication.pk, "quantity": 1}, format="json"
        ).status_code
        == 404
    )
    for quantity in (0, -1, 4, 10**9, "two"):
        assert (
            client.post(
                url,
                {"screening": mine.pk, "medication": medication.pk, "quantity": quantity},
                format="json",
            ).status_code
            == 400
        ), quantity
    assert (
        client.post(
            url,
            {
                "screening": mine.pk,
                "medication": medication.pk,
                "quantity": 1,
                "status": "approved",
            },
            format="json",
        ).status_code
        == 400
    )
    assert not Prescription.objects.exists()


# --- pharmacist decision --------------------------------------------------------------------------


def test_approve_issues_a_hashed_code_and_texts_the_patient(pharmacist, pharmacy, medication):
    prescription = pending_prescription(pharmacy, medication)
    response = client_for(pharmacist).post(
        f"/api/v1/prescriptions/{prescription.pk}/approve/",
        {"counselling": COUNSELLING, "note": "ok"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "approved"
    code = body["dispense_code"].replace("-", "")
    row = DispenseCode.objects.get(prescription=prescription)
    assert code not in (row.code_hash, row.salt) and row.code_hash == codes.code_hash(code)
    assert prescription.events.filter(to_status="approved", actor=pharmacist).exists()

    services.prescription_send_code(prescription_id=prescription.pk)
    services.prescription_send_code(prescription_id=prescription.pk)  # a redelivered task
    message = OutboundMessage.objects.get()
    assert message.to == prescription.patient.phone and body["dispense_code"] in message.body


def test_approval_requires_complete_bilingual_counselling(pharmacist, pharmacy, medication):
    prescription = pending_prescription(pharmacy, medication)
    client = client_for(pharmacist)
    url = f"/api/v1/prescriptions/{prescription.pk}/approve/"
    missing_en = {"ko": COUNSELLING["ko"]}
    blank = {"ko": {**COUNSELLING["ko"], "warnings": " "}, "en": COUNSELLING["en"]}
    extra = {"ko": {**COUNSELLING["ko"], "colour": "red"}, "en": COUNSELLING["en"]}
    for counselling in (missing_en, blank, extra, "take it", None):
        assert client.post(url, {"counselling": counselling}, format="json").status_code == 400
    assert (
        client.post(
            url, {"counselling": COUNSELLING, "status": "dispensed"}, format="json"
        ).status_code
        == 400
    )
    prescription.refresh_from_db()
    assert prescription.status == "pending_approval"
    with pytest.raises(InvalidInput):
        services.prescription_approve(
            user=pharmacist, prescription_id=prescription.pk, counselling=missing_en
        )


def test_allergy_warning_must_be_acknowledged(pharmacist, pharmacy):
    medication = MedicationFactory(allergy_keywords="benzalkonium, 벤잘코늄")
    prescription = pending_prescription(
        pharmacy, medication, patient=PatientFactory(allergies="벤잘코늄 알레르기")
    )
    with pytest.raises(Unprocessable) as exc:
        services.prescription_approve(
            user=pharmacist, prescription_id=prescription.pk, counselling=COUNSELLING
        )
    assert exc.value.details["warnings"]
    services.prescription_approve(
        user=pharmacist,
        prescription_id=prescription.pk,
        counselling=COUNSELLING,
        acknowledge_warnings=True,
    )


def test_glaucoma_finding_warns_for_decongestants(pharmacist, pharmacy):
    medication = MedicationFactory(avoid_in_glaucoma=True)
    prescription = pending_prescription(pharmacy, medication, findings=["G"])
    response = client_for(pharmacist).get(f"/api/v1/prescriptions/{prescription.pk}/")
    assert any("glaucoma" in w for w in response.json()["warnings"])


def test_reject_needs_a_reason_and_decides_once(pharmacist, pharmacy, medication):
    prescription = pending_prescription(pharmacy, medication)
    client = client_for(pharmacist)
    url = f"/api/v1/prescriptions/{prescription.pk}/reject/"
    assert client.post(url, {}, format="json").status_code == 400
    assert (
        client.post(url, {"reason": "안과 진료 필요"}, format="json").json()["status"] == "rejected"
    )
    assert client.post(url, {"reason": "again"}, format="json").status_code == 409
    with pytest.raises(Conflict):
        services.prescription_approve(
            user=pharmacist, prescription_id=prescription.pk, counselling=COUNSELLING
        )


def test_other_pharmacy_cannot_see_or_decide(pharmacy, medication):
    prescription = pending_prescription(pharmacy, medication)
    outsider = PharmacistFactory(pharmacy=PharmacyFactory())
    client = client_for(outsider)
    assert client.get(f"/api/v1/prescriptions/{prescription.pk}/").status_code == 404
    assert (
        client.post(
            f"/api/v1/prescriptions/{prescription.pk}/approve/",
            {"counselling": COUNSELLING},
            format="json",
        ).status_code
        == 404
    )
    assert client.get("/api/v1/prescriptions/").json()["count"] == 0
    with pytest.raises(NotFound):
        services.prescription_reject(user=outsider, prescription_id=prescription.pk, reason="x")


def test_health_worker_cannot_approve_and_sees_only_own_site(pharmacy, medication):
    prescription = pending_prescription(pharmacy, medication)
    worker = prescription.screening.health_worker
    client = client_for(worker)
    assert (
        client.post(
            f"/api/v1/prescriptions/{prescription.pk}/approve/",
            {"counselling": COUNSELLING},
            format="json",
        ).status_code
        == 403
    )
    assert client.get("/api/v1/prescriptions/").json()["count"] == 1
    stranger = HealthWorkerFactory(site=SiteFactory())
    assert client_for(stranger).get(f"/api/v1/prescriptions/{prescription.pk}/").status_code == 404


def test_list_filters_in_constant_queries(pharmacist, pharmacy, medication):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(pharmacist)

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/api/v1/prescriptions/?status=pending_approval").status_code == 200
        return len(ctx.captured_queries)

    pending_prescription(pharmacy, medication)
    client.get("/api/v1/prescriptions/")
    few = count_queries()
    for _ in range(4):
        pending_prescription(pharmacy, MedicationFactory())
    assert count_queries() == few
    assert client.get("/api/v1/prescriptions/?status=pending_approval").json()["count"] == 5
    assert client.get("/api/v1/prescriptions/?status=bogus").status_code == 400
    assert client.get("/api/v1/prescriptions/?limit=-1").status_code == 400


def test_admin_sees_everything(pharmacy, medication):
    pending_prescription(pharmacy, medication)
    assert client_for(AdminFactory()).get("/api/v1/prescriptions/").json()["count"] == 1


def test_expiry_sweep_expires_unused_codes(pharmacist, medication, time_machine):
    import datetime as dt

    from django.utils import timezone

    prescription, _ = approved_prescription(pharmacist, medication)
    assert services.prescriptions_expire() == 0
    time_machine.move_to(timezone.now() + dt.timedelta(hours=80))
    assert services.prescriptions_expire() == 1
    prescription.refresh_from_db()
    assert prescription.status == "expired"


# --- FHIR -----------------------------------------------------------------------------------------


def _fhir(user, prescription, **headers):
    return client_for(user).get(f"/api/v1/prescriptions/{prescription.pk}/fhir/", **headers)


def _resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_fhir_bundle_has_request_and_dispense(pharmacist, kiosk, kiosk_api, medication):
    stock(kiosk, medication, 3)
    prescription, code = approved_prescription(pharmacist, medication, quantity=2)
    dispense_id = present(kiosk_api, code).json()["id"]
    kiosk_api.post(f"/api/v1/kiosk/dispenses/{dispense_id}/confirm-counselling/", {}, format="json")
    kiosk_api.post(f"/api/v1/kiosk/dispenses/{dispense_id}/complete/", {}, format="json")

    response = _fhir(pharmacist, prescription)
    assert response.status_code == 200
    # The media type declares the FHIR version (R4B is 4.3).
    assert response["Content-Type"] == "application/fhir+json; fhirVersion=4.3"
    # FHIR clients name the FHIR media type (with or without a version); plain JSON works too.
    for accept in (
        "application/fhir+json",
        "application/fhir+json; fhirVersion=4.0",
        "application/json",
    ):
        again = _fhir(pharmacist, prescription, HTTP_ACCEPT=accept)
        assert again.status_code == 200, (accept, again.status_code)
        assert again["Content-Type"].startswith(accept.split(";")[0])
    bundle = r4b(response.content)  # R4B models, meta.profile, urn:uuid, references resolve
    kinds = [e.resource.get_resource_type() for e in bundle.entry]
    assert kinds == ["MedicationRequest", "MedicationDispense", "Provenance"]
    request, dispense, decision = (e.resource for e in bundle.entry)
    assert request.status == "completed" and request.intent == "order"
    assert request.subject.identifier.value == prescription.patient.pseudonym
    assert request.subject.identifier.system == fhir_shared.System.PATIENT
    assert request.groupIdentifier.value == str(prescription.pk)
    assert dispense.status == "completed" and dispense.quantity.value == 2
    assert dispense.authorizingPrescription[0].reference == bundle.entry[0].fullUrl
    assert decision.activity.text == "approved"
    assert [t.reference for t in decision.target] == [bundle.entry[0].fullUrl]


def test_fhir_of_a_rejected_request_names_the_health_worker_as_requester(pharmacist, pharmacy):
    prescription = pending_prescription(pharmacy, MedicationFactory())
    services.prescription_reject(
        user=pharmacist, prescription_id=prescription.pk, reason="안과 진료 필요"
    )
    bundle = _fhir(pharmacist, prescription).json()
    r4b(bundle)
    (request,) = _resources(bundle, "MedicationRequest")
    worker = prescription.requested_by
    assert request["requester"]["type"] == "Practitioner"
    assert request["requester"]["identifier"] == {
        "system": fhir_shared.System.USER,
        "value": str(worker.pk),
    }
    assert request["requester"]["display"] == (worker.get_full_name() or worker.username)
    # Never approved: still a proposal, cancelled, with the pharmacist's reason.
    assert request["status"] == "cancelled" and request["intent"] == "proposal"
    assert request["statusReason"]["text"] == "안과 진료 필요"
    assert worker.pk != pharmacist.pk  # the pharmacist is not the requester
    (decision,) = _resources(bundle, "Provenance")
    assert decision["activity"]["text"] == "rejected"
    (agent,) = decision["agent"]
    assert agent["type"]["coding"][0]["code"] == "verifier"
    assert agent["who"]["identifier"]["value"] == str(pharmacist.pk)


def test_fhir_of_an_undecided_protocol_proposal_has_no_pharmacist(pharmacist, pharmacy, medication):
    protocol(medication, symptom="dryness")
    screening = ScreeningFactory(triage="normal", symptoms=["dryness"])
    link(pharmacy, screening.site)
    prescription = services.prescription_propose_for_screening(screening_id=screening.pk)
    bundle = _fhir(pharmacist, prescription).json()
    r4b(bundle)
    (request,) = _resources(bundle, "MedicationRequest")
    assert request["requester"] == {"type": "Device", "display": "EyeBridge triage protocol"}
    assert request["status"] == "draft" and request["intent"] == "proposal"
    assert _resources(bundle, "Provenance") == []


def test_prescription_exports_pass_the_independent_fhir_validator(
    pharmacist, pharmacy, kiosk, kiosk_api, medication
):
    stock(kiosk, medication, 3)
    dispensed, code = approved_prescription(pharmacist, medication, quantity=1)
    dispense_id = present(kiosk_api, code).json()["id"]
    kiosk_api.post(f"/api/v1/kiosk/dispenses/{dispense_id}/confirm-counselling/", {}, format="json")
    kiosk_api.post(f"/api/v1/kiosk/dispenses/{dispense_id}/complete/", {}, format="json")
    rejected = pending_prescription(pharmacy, MedicationFactory())
    services.prescription_reject(user=pharmacist, prescription_id=rejected.pk, reason="no")
    pending = pending_prescription(pharmacy, MedicationFactory())
    assert_fhir_js_valid([_fhir(pharmacist, p).json() for p in (dispensed, rejected, pending)])


def test_openapi_schema_documents_the_kiosk_api(pharmacist):
    response = client_for(pharmacist).get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    operation = schema["paths"]["/api/v1/kiosk/dispenses/"]["post"]
    assert {"201", "401", "404", "409", "422"} <= set(operation["responses"])
    assert any(
        p["name"] == "Idempotency-Key" and p["in"] == "header" for p in operation["parameters"]
    )
    assert "kioskAuth" in schema["components"]["securitySchemes"]


def test_protocol_rows_only_accept_treatable_triage(medication):
    from django.core.exceptions import ValidationError

    from pharmacy.models import MedicationProtocol

    for triage in (["referable"], "normal", [], ["normal", "urgent"]):
        row = MedicationProtocol(name="x", triage=triage, medication=medication)
        with pytest.raises(ValidationError):
            row.full_clean()
    MedicationProtocol(
        name="ok", triage=["normal"], symptom="dryness", medication=medication
    ).full_clean()
