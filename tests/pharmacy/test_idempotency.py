"""The Idempotency-Key protocol on the kiosk's dispense endpoint: which answers are kept and
replayed, which ones free the key so that a retry runs again, and how a key is scoped."""

from __future__ import annotations

import pytest

from pharmacy.models import Dispense, IdempotencyRecord, Kiosk
from pharmacy.services import request_fingerprint
from tests.pharmacy.conftest import kiosk_client, present
from tests.pharmacy.factories import approved_prescription, kiosk_for, stock

pytestmark = pytest.mark.django_db


def test_a_refusal_is_kept_and_replayed_like_a_success(pharmacist, kiosk, kiosk_api, medication):
    from pharmacy.services import prescription_cancel

    stock(kiosk, medication, 3)
    prescription, code = approved_prescription(pharmacist, medication)
    prescription_cancel(user=pharmacist, prescription_id=prescription.pk, reason="moved")

    first = present(kiosk_api, code, key="cancelled")
    replay = present(kiosk_api, code, key="cancelled")

    assert first.status_code == replay.status_code == 409
    assert replay.json() == first.json() and first.json()["code"] == "prescription_cancelled"
    assert "Idempotent-Replayed" not in first and replay["Idempotent-Replayed"] == "true"
    record = IdempotencyRecord.objects.get(key="cancelled")
    assert (record.state, record.response_status) == ("done", 409)


def test_a_rate_limit_frees_the_key_so_that_a_later_retry_runs(kiosk, kiosk_api, settings):
    settings.PHARMACY_KIOSK_MAX_CODE_FAILURES = 1
    assert present(kiosk_api, "ABCD-EFG2").status_code == 404

    limited = present(kiosk_api, "ABCD-EFG3", key="later")
    assert limited.status_code == 429 and limited.json()["code"] == "kiosk_rate_limited"
    assert not IdempotencyRecord.objects.filter(key="later").exists()

    Kiosk.objects.filter(pk=kiosk.pk).update(code_failures=0)
    retry = present(kiosk_api, "ABCD-EFG3", key="later")
    assert retry.status_code == 404 and "Idempotent-Replayed" not in retry
    assert IdempotencyRecord.objects.get(key="later").response_status == 404


def test_an_unexpected_error_frees_the_key(pharmacist, kiosk, kiosk_api, medication, monkeypatch):
    from pharmacy import services

    stock(kiosk, medication, 3)
    _, code = approved_prescription(pharmacist, medication)

    def broken(**kwargs: object) -> None:
        raise RuntimeError("database went away")

    with monkeypatch.context() as patch:
        patch.setattr(services, "dispense_reserve", broken)
        with pytest.raises(RuntimeError):
            present(kiosk_api, code, key="crash")
    assert not IdempotencyRecord.objects.filter(key="crash").exists()

    retry = present(kiosk_api, code, key="crash")
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry
    assert Dispense.objects.count() == 1


def test_a_key_still_in_flight_is_409_and_changes_nothing(kiosk, kiosk_api):
    IdempotencyRecord.objects.create(
        kiosk=kiosk,
        key="busy",
        method_path="POST /api/v1/kiosk/dispenses/",
        request_hash=request_fingerprint({"code": "ABCD-EFGH"}),
    )
    response = present(kiosk_api, "ABCD-EFGH", key="busy")
    assert response.status_code == 409 and response.json()["code"] == "idempotency_in_flight"
    assert IdempotencyRecord.objects.get(key="busy").state == "in_flight"
    assert Kiosk.objects.get(pk=kiosk.pk).code_failures == 0  # the code was never evaluated


def test_a_key_is_scoped_to_its_kiosk(kiosk, kiosk_api, pharmacy):
    other = kiosk_client(*kiosk_for(pharmacy, "Other"))
    assert present(kiosk_api, "ABCD-EFGH", key="shared").status_code == 404
    mine = present(other, "ABCD-EFGJ", key="shared")
    assert mine.status_code == 404 and "Idempotent-Replayed" not in mine
    assert IdempotencyRecord.objects.filter(key="shared").count() == 2


@pytest.mark.parametrize("key", ["has space", "x" * 101, "ключ", "tab\tkey"])
def test_a_malformed_key_is_400_and_nothing_is_kept(kiosk_api, key):
    response = present(kiosk_api, "ABCD-EFGH", key=key)
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_required"
    assert not IdempotencyRecord.objects.exists()
