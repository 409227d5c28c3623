from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

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
