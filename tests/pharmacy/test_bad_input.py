"""Bad input never causes a 500 and never changes anything: a seeded random fuzz of every pharmacy
endpoint's body (wrong types, huge and negative numbers, nesting, unicode, unknown fields)."""

from __future__ import annotations

import random

import pytest
from rest_framework.test import APIClient

from pharmacy.models import Dispense, IdempotencyRecord, Prescription, StockLot, StockMovement
from tests.pharmacy.conftest import kiosk_client, present
from tests.pharmacy.factories import approved_prescription, pending_prescription, stock

pytestmark = pytest.mark.django_db

WEIRD = [
    None,
    True,
    -1,
    0,
    2**63,
    -(2**70),
    1.5e308,
    "",
    " ",
    "ABCD-EFGH",
    "💊" * 50,
    "x" * 5000,
    "\u0000",
    [],
    [1, 2],
    {},
    {"ko": {}},
    {"$gt": ""},
    "1; DROP TABLE x",
    "approved",
]


def bodies(fields: list[str], rng: random.Random, n: int = 40):
    for _ in range(n):
        body = {}
        for name in rng.sample(
            fields + ["status", "id", "pharmacy", "quantity"], k=rng.randint(0, 4)
        ):
            body[name] = rng.choice(WEIRD)
        yield body
    yield ["not", "an", "object"]
    yield "just a string"
    yield 42


def snapshot():
    return (
        list(StockLot.objects.order_by("pk").values_list("quantity", flat=True)),
        Dispense.objects.count(),
        StockMovement.objects.count(),
        list(Prescription.objects.order_by("pk").values_list("status", flat=True)),
    )


def test_kiosk_endpoints_answer_4xx_to_garbage(pharmacist, kiosk_and_secret, medication):
    kiosk, secret = kiosk_and_secret
    stock(kiosk, medication, 5)
    approved_prescription(pharmacist, medication)
    client = kiosk_client(kiosk, secret)
    before = snapshot()
    rng = random.Random(4)
    endpoints = [
        ("/api/v1/kiosk/dispenses/", ["code"]),
        ("/api/v1/kiosk/dispenses/1/confirm-counselling/", []),
        ("/api/v1/kiosk/dispenses/1/complete/", []),
        ("/api/v1/kiosk/dispenses/1/fail/", ["reason"]),
        ("/api/v1/kiosk/dispenses/99999999999999999999/complete/", []),
        ("/api/v1/kiosk/call-requests/", ["dispense", "message"]),
        ("/api/v1/kiosk/heartbeat/", ["status", "firmware", "temperature_c"]),
    ]
    for url, fields in endpoints:
        for i, body in enumerate(bodies(fields, rng)):
            response = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=f"fuzz-{url}-{i}")
            assert 400 <= response.status_code < 500 or response.status_code in (200, 201), (
                url,
                body,
                response.content,
            )
    # Heartbeats and call requests may legitimately succeed; nothing else changed.
    assert snapshot() == before
    assert not IdempotencyRecord.objects.filter(response_status__gte=500).exists()
    for i, raw in enumerate(
        (b"{not json", b'{"code": Infinity}', b'{"code": NaN}', b"\xff\xfe", b"")
    ):
        response = client.post(
            "/api/v1/kiosk/dispenses/",
            raw,
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"raw-{i}",
        )
        assert response.status_code == 400, (raw, response.content)


def test_staff_endpoints_answer_4xx_to_garbage(pharmacist, pharmacy, medication):
    prescription = pending_prescription(pharmacy, medication)
    client = APIClient()
    client.force_login(pharmacist)
    before = snapshot()
    rng = random.Random(7)
    endpoints = [
        (
            f"/api/v1/prescriptions/{prescription.pk}/approve/",
            ["counselling", "note", "acknowledge_warnings"],
        ),
        (f"/api/v1/prescriptions/{prescription.pk}/reject/", []),
        (f"/api/v1/prescriptions/{prescription.pk}/cancel/", []),
        ("/api/v1/prescriptions/request/", ["screening", "medication", "quantity", "note"]),
    ]
    for url, fields in endpoints:
        for body in bodies(fields, rng):
            response = client.post(url, body, format="json")
            assert 400 <= response.status_code < 500, (
                url,
                body,
                response.status_code,
                response.content,
            )
    assert snapshot() == before
    for query in ("?status=💊", "?limit=abc", "?offset=-5", "?limit=99999999999999999999"):
        assert client.get(f"/api/v1/prescriptions/{query}").status_code == 400


def test_a_nul_in_an_unknown_field_name_is_a_400_and_the_replay_returns_it(kiosk_api):
    """Found by the 1,000-example API fuzzing: the 400 body names the unknown field, and a NUL in
    that name made storing the answer for Idempotency-Key replays fail in PostgreSQL (jsonb has no
    \\u0000): a 500. The stored and returned answer now carries U+FFFD in its place."""
    before = snapshot()
    key = "nul-key"
    first = present(kiosk_api, "ABCD-EFGH", key=key, **{"a\u0000b": {}})
    assert first.status_code == 400, first.content
    assert "a\ufffdb" in first.json()
    replay = present(kiosk_api, "ABCD-EFGH", key=key, **{"a\u0000b": {}})
    assert replay.status_code == 400 and replay.json() == first.json()
    assert replay["Idempotent-Replayed"] == "true"
    assert IdempotencyRecord.objects.get(key=key).response_status == 400
    assert snapshot() == before
