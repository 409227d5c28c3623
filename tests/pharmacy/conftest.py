from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import TypeVar

import pytest
from django.db import connections
from rest_framework.test import APIClient

from pharmacy import codes
from tests.pharmacy.factories import (
    MedicationFactory,
    PharmacistFactory,
    PharmacyFactory,
    kiosk_for,
)


@pytest.fixture
def pharmacy(db):
    return PharmacyFactory()


@pytest.fixture
def pharmacist(pharmacy):
    return PharmacistFactory(pharmacy=pharmacy)


@pytest.fixture
def medication(db):
    return MedicationFactory()


@pytest.fixture
def kiosk_and_secret(pharmacy):
    return kiosk_for(pharmacy)


@pytest.fixture
def kiosk(kiosk_and_secret):
    return kiosk_and_secret[0]


def kiosk_client(kiosk, secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Kiosk {kiosk.kiosk_id}:{secret}")
    return client


@pytest.fixture
def kiosk_api(kiosk_and_secret) -> APIClient:
    return kiosk_client(*kiosk_and_secret)


def present(client: APIClient, code: str, key: str | None = None, **extra):
    return client.post(
        "/api/v1/kiosk/dispenses/",
        {"code": code, **extra},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()),
    )


# The race tests: this many clients at once (above every cap, so that a cap is what stops them).
N = 50
T = TypeVar("T")


def at_once(make_request: Callable[[int], T], n: int = N) -> list[T]:
    """Run make_request(i) for each i < n in its own thread, all released at the same instant by a
    barrier; return the results in order. An exception in any thread fails the test."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = make_request(i)
        except Exception as exc:  # surfaced by the assertion below
            results[i] = exc
        finally:
            connections.close_all()  # each thread's own database connection

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for result in results:
        assert not isinstance(result, Exception), repr(result)
    return results


def unknown_code(i: int) -> str:
    """A well-formed code that no prescription has (distinct for each i)."""
    digits = codes.ALPHABET
    return "ZZZ" + "".join(digits[(i // len(digits) ** k) % len(digits)] for k in range(5))
