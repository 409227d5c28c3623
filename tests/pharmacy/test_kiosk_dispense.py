"""The kiosk release flow through the real API: reserve, confirm guidance, complete or fail."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import AdminAlert
from pharmacy.models import Dispense, PharmacyAlert, Prescription, StockLot, StockMovement
from tests.factories import UserFactory
from tests.pharmacy.conftest import kiosk_client, present
from tests.pharmacy.factories import (
    CategoryFactory,
    MedicationFactory,
    PharmacistFactory,
    PharmacyFactory,
    approved_prescription,
    kiosk_for,
    stock,
)

pytestmark = pytest.mark.django_db


def test_full_release_flow_decrements_stock_and_marks_dispensed(
    pharmacist, kiosk, kiosk_api, medication
):
    lot = stock(kiosk, medication, 5, slot="B2")
    prescription, code = approved_prescription(pharmacist, medication, quantity=2)

    response = present(kiosk_api, f"{code[:4]}-{code[4:].lower()}")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "reserved"
    assert body["items"] == [
        {
            "medication_id": medication.pk,
            "code": medication.code,
            "name_ko": medication.name_ko,
            "name_en": medication.name_en,
            "strength": "0.1%",
            "slot": "B2",
            "lot_number": "L1",
            "expiry": lot.expiry.isoformat(),
            "quantity": 2,
        }
    ]
    assert body["counselling"]["ko"]["frequency"] == "하루 4-6회"
    assert body["counselling_confirmed"] is False
    lot.refresh_from_db()
    assert lot.quantity == 3

    # Nothing is released before the patient confirms the guidance.
    early = kiosk_api.post(f"/api/v1/kiosk/dispenses/{body['id']}/complete/", {}, format="json")
    assert early.status_code == 409
    assert early.json()["code"] == "counselling_not_confirmed"

    confirm = kiosk_api.post(
        f"/api/v1/kiosk/dispenses/{body['id']}/confirm-counselling/", {}, format="json"
    )
    assert confirm.status_code == 200 and confirm.json()["counselling_confirmed"] is True
    done = kiosk_api.post(f"/api/v1/kiosk/dispenses/{body['id']}/complete/", {}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "completed"
    prescription.refresh_from_db()
    assert prescription.status == Prescription.Status.DISPENSED
    assert prescription.events.filter(to_status="dispensed").exists()

    again = present(kiosk_api, code)
    assert again.status_code == 409 and again.json()["code"] == "code_used"


def test_every_kiosk_answer_is_the_documented_dispense_output_of_the_stored_rows(
    pharmacist, kiosk, kiosk_api, medication
):
    """Each answer has exactly the fields that DispenseOutput documents in the OpenAPI schema, and
    says what the database now holds: the reservation answers from the rows it has in memory, the
    other steps read them back (reserved, confirmed, completed, failed; one lot and two lots)."""
    from rest_framework import serializers

    from pharmacy.apis import DispenseOutput

    stock(kiosk, medication, 1, lot="SOON", expiry=timezone.localdate() + dt.timedelta(days=9))
    stock(kiosk, medication, 9, lot="LATE", expiry=timezone.localdate() + dt.timedelta(days=99))
    moment = serializers.DateTimeField()

    def stored(dispense_id: int) -> dict:
        dispense = Dispense.objects.select_related("prescription").get(pk=dispense_id)
        return {
            "id": dispense.pk,
            "status": dispense.status,
            "prescription_id": dispense.prescription_id,
            "items": [
                {
                    "medication_id": line.medication_id,
                    "code": line.medication.code,
                    "name_ko": line.medication.name_ko,
                    "name_en": line.medication.name_en,
                    "strength": line.medication.strength,
                    "slot": line.slot,
                    "lot_number": line.lot.lot_number,
                    "expiry": line.lot.expiry.isoformat(),
                    "quantity": line.quantity,
                }
                for line in dispense.lines.select_related("medication", "lot")
            ],
            "counselling": dispense.prescription.counselling,
            "counselling_confirmed": dispense.counselling_confirmed_at is not None,
            "created_at": moment.to_representation(dispense.created_at),
            "completed_at": dispense.completed_at
            and moment.to_representation(dispense.completed_at),
        }

    def documented(answer: dict) -> dict:
        assert list(answer) == list(DispenseOutput().fields)
        return stored(answer["id"])

    _, code = approved_prescription(pharmacist, medication, quantity=2)
    reserved = present(kiosk_api, code).json()
    assert len(reserved["items"]) == 2 and reserved == documented(reserved)
    path = f"/api/v1/kiosk/dispenses/{reserved['id']}"
    confirmed = kiosk_api.post(f"{path}/confirm-counselling/", {}, format="json").json()
    assert confirmed["counselling_confirmed"] and confirmed == documented(confirmed)
    completed = kiosk_api.post(f"{path}/complete/", {}, format="json").json()
    assert completed["completed_at"] and completed == documented(completed)

    _, code = approved_prescription(pharmacist, medication, quantity=1)
    other = present(kiosk_api, code).json()
    failed = kiosk_api.post(f"/api/v1/kiosk/dispenses/{other['id']}/fail/", {}, format="json")
    assert failed.json()["status"] == "failed" and failed.json() == documented(failed.json())


def test_fefo_takes_earliest_expiry_and_skips_expired_lots(
    pharmacist, kiosk, kiosk_api, medication
):
    today = timezone.localdate()
    expired = stock(kiosk, medication, 5, lot="OLD", expiry=today - dt.timedelta(days=1))
    expires_today = stock(kiosk, medication, 5, lot="TODAY", expiry=today)
    late = stock(kiosk, medication, 5, lot="LATE", expiry=today + dt.timedelta(days=300))
    soon = stock(kiosk, medication, 1, lot="SOON", expiry=today + dt.timedelta(days=20))
    _, code = approved_prescription(pharmacist, medication, quantity=2)

    body = present(kiosk_api, code).json()
    assert [(i["lot_number"], i["quantity"]) for i in body["items"]] == [("SOON", 1), ("LATE", 1)]
    for lot, left in ((expired, 5), (expires_today, 5), (late, 4), (soon, 0)):
        lot.refresh_from_db()
        assert lot.quantity == left


def test_only_expired_stock_is_out_of_stock_and_changes_nothing(
    pharmacist, kiosk, kiosk_api, medication
):
    lot = stock(kiosk, medication, 5, expiry=timezone.localdate() - dt.timedelta(days=3))
    prescription, code = approved_prescription(pharmacist, medication)

    response = present(kiosk_api, code)
    assert response.status_code == 409 and response.json()["code"] == "out_of_stock"
    lot.refresh_from_db()
    assert lot.quantity == 5
    assert not Dispense.objects.exists()
    prescription.refresh_from_db()
    assert prescription.status == Prescription.Status.APPROVED


def test_jam_restores_stock_alerts_pharmacist_and_code_works_again(
    pharmacist, kiosk, kiosk_api, medication
):
    lot = stock(kiosk, medication, 1)
    prescription, code = approved_prescription(pharmacist, medication)
    dispense_id = present(kiosk_api, code).json()["id"]
    lot.refresh_from_db()
    assert lot.quantity == 0

    failed = kiosk_api.post(
        f"/api/v1/kiosk/dispenses/{dispense_id}/fail/", {"reason": "jam in slot A1"}, format="json"
    )
    assert failed.status_code == 200 and failed.json()["status"] == "failed"
    lot.refresh_from_db()
    assert lot.quantity == 1
    assert (
        PharmacyAlert.objects.filter(
            pharmacy=prescription.pharmacy, object_ref=f"dispense:{dispense_id}"
        ).count()
        == 1
    )
    assert AdminAlert.objects.filter(object_ref=f"dispense:{dispense_id}").count() == 1
    # A repeated "fail" is harmless: no second restore.
    assert (
        kiosk_api.post(
            f"/api/v1/kiosk/dispenses/{dispense_id}/fail/", {}, format="json"
        ).status_code
        == 200
    )
    lot.refresh_from_db()
    assert lot.quantity == 1
    assert StockMovement.objects.filter(reason="restore").count() == 1

    retry = present(kiosk_api, code)
    assert retry.status_code == 201


def test_unknown_code_is_404_and_malformed_code_is_400(kiosk_api):
    assert present(kiosk_api, "ABCD-EFGH").status_code == 404
    for bad in ("", "abc", "ABCD-EFG0", "1" * 40):
        response = present(kiosk_api, bad)
        assert response.status_code == 400, bad
    assert (
        kiosk_api.post(
            "/api/v1/kiosk/dispenses/",
            {"code": 12345678},
            format="json",
            HTTP_IDEMPOTENCY_KEY="k-int",
        ).status_code
        == 400
    )
    assert (
        kiosk_api.post(
            "/api/v1/kiosk/dispenses/", ["x"], format="json", HTTP_IDEMPOTENCY_KEY="k-list"
        ).status_code
        == 400
    )


def test_unknown_fields_are_refused_and_nothing_changes(pharmacist, kiosk, kiosk_api, medication):
    stock(kiosk, medication, 3)
    _, code = approved_prescription(pharmacist, medication)
    response = present(kiosk_api, code, status="completed", quantity=-5)
    assert response.status_code == 400
    assert set(response.json()) >= {"status", "quantity"}
    assert not Dispense.objects.exists()


def test_missing_idempotency_key_is_400(kiosk_api):
    response = kiosk_api.post("/api/v1/kiosk/dispenses/", {"code": "ABCD-EFGH"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_required"


def test_cancelled_prescription_code_is_409(pharmacist, kiosk, kiosk_api, medication):
    from pharmacy.services import prescription_cancel

    stock(kiosk, medication, 3)
    prescription, code = approved_prescription(pharmacist, medication)
    prescription_cancel(user=pharmacist, prescription_id=prescription.pk, reason="patient moved")
    response = present(kiosk_api, code)
    assert response.status_code == 409 and response.json()["code"] == "prescription_cancelled"
    assert StockLot.objects.get().quantity == 3


def test_expired_code_is_409(pharmacist, kiosk, kiosk_api, medication, time_machine):
    stock(kiosk, medication, 3, expiry=timezone.localdate() + dt.timedelta(days=400))
    _, code = approved_prescription(pharmacist, medication)
    time_machine.move_to(timezone.now() + dt.timedelta(hours=73))
    response = present(kiosk_api, code)
    assert response.status_code == 409 and response.json()["code"] == "code_expired"


def test_code_of_another_pharmacy_is_unknown_here(medication, kiosk, kiosk_api):
    other_pharmacist = PharmacistFactory(pharmacy=PharmacyFactory())
    other_kiosk, _ = kiosk_for(other_pharmacist.pharmacist_membership.pharmacy)
    stock(other_kiosk, medication, 3)
    stock(kiosk, medication, 3)
    _, code = approved_prescription(other_pharmacist, medication)
    assert present(kiosk_api, code).status_code == 404


def test_kiosk_refuses_items_outside_kiosk_categories(pharmacist, kiosk, kiosk_api):
    restricted = MedicationFactory(
        category=CategoryFactory(code="antibiotic-eye", kiosk_dispensable=False)
    )
    stock(kiosk, restricted, 3)
    _, code = approved_prescription(pharmacist, restricted)
    response = present(kiosk_api, code)
    assert response.status_code == 409 and response.json()["code"] == "not_kiosk_dispensable"
    assert StockLot.objects.get().quantity == 3


def test_prescription_only_item_is_refused_even_in_a_kiosk_category(pharmacist, kiosk, kiosk_api):
    rx_only = MedicationFactory(is_otc=False)
    stock(kiosk, rx_only, 3)
    _, code = approved_prescription(pharmacist, rx_only)
    assert present(kiosk_api, code).json()["code"] == "not_kiosk_dispensable"


def test_unknown_codes_rate_limit_the_kiosk(kiosk_api, settings):
    settings.PHARMACY_KIOSK_MAX_CODE_FAILURES = 3
    statuses = [present(kiosk_api, f"ABCD-EFG{c}").status_code for c in "23456"]
    assert statuses == [404, 404, 404, 429, 429]


def test_a_code_locks_after_too_many_presentations(
    pharmacist, kiosk, kiosk_api, medication, settings
):
    settings.PHARMACY_CODE_MAX_ATTEMPTS = 2
    stock(kiosk, medication, 3)
    _, code = approved_prescription(pharmacist, medication)
    assert present(kiosk_api, code).status_code == 201
    assert present(kiosk_api, code).status_code == 409  # in progress at this kiosk
    response = present(kiosk_api, code)
    assert response.status_code == 429 and response.json()["code"] == "code_locked"


def test_idempotent_replay_returns_the_original_answer(pharmacist, kiosk, kiosk_api, medication):
    stock(kiosk, medication, 3)
    _, code = approved_prescription(pharmacist, medication)
    first = present(kiosk_api, code, key="key-1")
    replay = present(kiosk_api, code, key="key-1")
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay["Idempotent-Replayed"] == "true"
    assert Dispense.objects.count() == 1
    assert StockLot.objects.get().quantity == 2

    other_body = present(kiosk_api, "ABCD-EFGH", key="key-1")
    assert other_body.status_code == 422 and other_body.json()["code"] == "idempotency_key_reused"


def test_dispense_of_another_kiosk_is_404(pharmacist, pharmacy, kiosk, kiosk_api, medication):
    stock(kiosk, medication, 3)
    _, code = approved_prescription(pharmacist, medication)
    dispense_id = present(kiosk_api, code).json()["id"]
    other = kiosk_client(*kiosk_for(pharmacy, "Other"))
    for action in ("confirm-counselling", "complete", "fail"):
        assert (
            other.post(
                f"/api/v1/kiosk/dispenses/{dispense_id}/{action}/", {}, format="json"
            ).status_code
            == 404
        )


def test_staff_credentials_are_refused_on_kiosk_endpoints(pharmacist, kiosk):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    session = APIClient()
    session.force_login(pharmacist)
    assert session.post("/api/v1/kiosk/heartbeat/", {}, format="json").status_code in (401, 403)
    token = APIClient()
    token.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=pharmacist).key}")
    assert token.post("/api/v1/kiosk/heartbeat/", {}, format="json").status_code == 401


def test_kiosk_credentials_are_refused_on_staff_endpoints(kiosk_api, pharmacist, medication):
    prescription, _ = approved_prescription(pharmacist, medication)
    for url in (
        "/api/v1/prescriptions/",
        f"/api/v1/prescriptions/{prescription.pk}/",
        f"/api/v1/prescriptions/{prescription.pk}/fhir/",
        "/api/v1/medications/",
    ):
        assert kiosk_api.get(url).status_code in (401, 403), url
    assert kiosk_api.post(
        f"/api/v1/prescriptions/{prescription.pk}/cancel/", {"reason": "x"}, format="json"
    ).status_code in (401, 403)


def test_wrong_secret_and_retired_kiosk_are_401(kiosk):
    assert (
        kiosk_client(kiosk, "wrong").post("/api/v1/kiosk/heartbeat/", {}, format="json").status_code
        == 401
    )
    kiosk.status = "retired"
    kiosk.save()
    user = UserFactory()
    assert user  # a kiosk is not a user: no user row is involved in kiosk auth
    from pharmacy.services import kiosk_rotate_secret

    secret = kiosk_rotate_secret(kiosk=kiosk)
    assert (
        kiosk_client(kiosk, secret).post("/api/v1/kiosk/heartbeat/", {}, format="json").status_code
        == 401
    )


def test_heartbeat_records_time_and_refuses_bad_input(kiosk, kiosk_api):
    assert (
        kiosk_api.post(
            "/api/v1/kiosk/heartbeat/", {"status": "ok", "temperature_c": 21.5}, format="json"
        ).status_code
        == 200
    )
    kiosk.refresh_from_db()
    assert kiosk.last_heartbeat_at is not None
    assert (
        kiosk_api.post(
            "/api/v1/kiosk/heartbeat/", {"temperature_c": "hot"}, format="json"
        ).status_code
        == 400
    )
    assert (
        kiosk_api.post("/api/v1/kiosk/heartbeat/", {"pharmacy": 9}, format="json").status_code
        == 400
    )


def test_call_request_appears_for_the_pharmacy(kiosk, kiosk_api, pharmacy):
    response = kiosk_api.post(
        "/api/v1/kiosk/call-requests/", {"message": "질문이 있어요"}, format="json"
    )
    assert response.status_code == 201
    assert pharmacy.call_requests.get().message == "질문이 있어요"
    assert (
        kiosk_api.post(
            "/api/v1/kiosk/call-requests/", {"dispense": 999999}, format="json"
        ).status_code
        == 404
    )


def test_stale_reservation_is_released(pharmacist, kiosk, kiosk_api, medication, time_machine):
    from pharmacy.services import dispenses_release_stale

    lot = stock(kiosk, medication, 1)
    _, code = approved_prescription(pharmacist, medication)
    present(kiosk_api, code)
    assert dispenses_release_stale() == 0
    time_machine.move_to(timezone.now() + dt.timedelta(minutes=11))
    assert dispenses_release_stale() == 1
    lot.refresh_from_db()
    assert lot.quantity == 1


def test_a_slot_holds_one_medication_and_a_lot_keeps_its_expiry(kiosk, medication):
    from config.errors import Conflict

    other = MedicationFactory()
    lot = stock(kiosk, medication, 2, slot="A1", lot="L1")
    with pytest.raises(Conflict):
        stock(kiosk, other, 2, slot="A1", lot="X1")
    with pytest.raises(Conflict):
        stock(kiosk, medication, 2, slot="A1", lot="L1", expiry=lot.expiry + dt.timedelta(days=1))
    assert stock(kiosk, medication, 3, slot="A1", lot="L1", expiry=lot.expiry).quantity == 5
    assert stock(kiosk, other, 1, slot="A2", lot="X1").quantity == 1
