"""Real concurrency against PostgreSQL: 50 threads, each with its own connection, released at the
same instant by a barrier, hitting the kiosk API outside any test transaction."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from django.db import IntegrityError, connection, transaction

from pharmacy.models import Dispense, DispenseCode, StockLot, StockMovement
from tests.pharmacy.conftest import N, at_once, kiosk_client, present, unknown_code
from tests.pharmacy.factories import approved_prescription, stock

pytestmark = pytest.mark.django_db(transaction=True)


def assert_stock_consistent() -> None:
    for lot in StockLot.objects.all():
        assert lot.quantity >= 0
        assert sum(m.delta for m in StockMovement.objects.filter(lot=lot)) == lot.quantity


def test_fifty_codes_for_the_last_unit_exactly_one_wins(
    pharmacist, kiosk_and_secret, medication, settings
):
    settings.PHARMACY_CODE_MAX_ATTEMPTS = 100
    kiosk, secret = kiosk_and_secret
    lot = stock(kiosk, medication, 1)
    codes = [approved_prescription(pharmacist, medication)[1] for _ in range(N)]

    responses = at_once(lambda i: present(kiosk_client(kiosk, secret), codes[i]))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: N - 1}, statuses
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"out_of_stock"}
    lot.refresh_from_db()
    assert lot.quantity == 0
    assert Dispense.objects.count() == 1
    assert_stock_consistent()


def test_the_same_code_fifty_times_dispenses_once(pharmacist, kiosk_and_secret, medication):
    kiosk, secret = kiosk_and_secret
    lot = stock(kiosk, medication, 10)
    prescription, code = approved_prescription(pharmacist, medication)

    responses = at_once(lambda i: present(kiosk_client(kiosk, secret), code))

    statuses = Counter(r.status_code for r in responses)
    assert statuses[201] == 1, statuses
    # The others: in progress or used (409) while the code has attempts left, then locked (429).
    # Each presentation is counted before it is evaluated: exactly the cap (10) get an answer.
    assert set(statuses) <= {201, 409, 429}
    assert statuses[201] + statuses[409] == 10, statuses
    assert {r.json()["code"] for r in responses if r.status_code == 429} == {"code_locked"}
    assert Dispense.objects.filter(prescription=prescription).count() == 1
    lot.refresh_from_db()
    assert lot.quantity == 9
    assert DispenseCode.objects.get().attempts == 10
    assert_stock_consistent()


def test_fifty_unknown_codes_at_a_fresh_kiosk_get_exactly_the_cap_of_404s(kiosk_and_secret):
    """The same race as tests/pharmacy/test_kiosk_caps_race.py, in-process (threads, each with
    its own connection); that file runs it across gunicorn worker processes."""
    kiosk, secret = kiosk_and_secret

    responses = at_once(lambda i: present(kiosk_client(kiosk, secret), unknown_code(i)))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {404: 10, 429: N - 10}, statuses
    kiosk.refresh_from_db()
    assert kiosk.code_failures == 10


def test_the_same_idempotency_key_fifty_times_has_one_side_effect(
    pharmacist, kiosk_and_secret, medication
):
    kiosk, secret = kiosk_and_secret
    lot = stock(kiosk, medication, 10)
    _, code = approved_prescription(pharmacist, medication)
    key = str(uuid.uuid4())

    responses = at_once(lambda i: present(kiosk_client(kiosk, secret), code, key=key))

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    assert statuses[201] >= 1
    assert {r.json()["code"] for r in responses if r.status_code == 409} <= {
        "idempotency_in_flight"
    }
    # Every 201 is the same dispense (the original or its replay).
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    assert Dispense.objects.count() == 1
    assert StockMovement.objects.filter(reason="reserve").count() == 1
    lot.refresh_from_db()
    assert lot.quantity == 9
    assert DispenseCode.objects.get().attempts == 1
    assert_stock_consistent()


def test_database_refuses_negative_stock(kiosk, medication):
    lot = stock(kiosk, medication, 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        StockLot.objects.filter(pk=lot.pk).update(quantity=-1)
    assert connection.is_usable()
