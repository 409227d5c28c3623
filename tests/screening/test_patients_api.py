import pytest

from screening.models import Patient
from tests.factories import HealthWorkerFactory, PatientFactory, SiteFactory

pytestmark = pytest.mark.django_db

VALID = {
    "name": "홍길동",
    "birth_date": "1950-04-01",
    "sex": "M",
    "phone": "010-1234-5678",
    "consent_given": True,
}


def test_token_auth_then_register_a_patient(api_client):
    HealthWorkerFactory(username="hw")
    r = api_client.post(
        "/api/v1/auth/token/", {"username": "hw", "password": "pw-test-123"}, format="json"
    )
    assert r.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {r.json()['token']}")
    r = api_client.post("/api/v1/patients/", VALID, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["pseudonym"].startswith("P-")


def test_wrong_password_is_401(api_client):
    HealthWorkerFactory(username="hw")
    r = api_client.post(
        "/api/v1/auth/token/", {"username": "hw", "password": "nope"}, format="json"
    )
    assert r.status_code == 401


def test_anonymous_is_401(api_client):
    assert api_client.get("/api/v1/patients/").status_code == 401


def test_duplicate_registration_warns_and_offers_the_existing_record(api_client):
    hw = HealthWorkerFactory()
    api_client.force_authenticate(hw)
    first = api_client.post("/api/v1/patients/", VALID, format="json").json()
    r = api_client.post("/api/v1/patients/", VALID | {"phone": ""}, format="json")
    assert r.status_code == 409
    assert r.json()["duplicates"][0]["id"] == first["id"]
    assert Patient.objects.count() == 1
    r = api_client.post("/api/v1/patients/", VALID | {"allow_duplicate": True}, format="json")
    assert r.status_code == 201


@pytest.mark.parametrize(
    "change",
    [
        {"consent_given": False},
        {"birth_date": "2999-01-01"},
        {"sex": "X"},
        {"home_latitude": 91, "home_longitude": 10},
        {"home_latitude": "NaN", "home_longitude": 10},
        {"status": "approved"},
        {"name": ""},
    ],
)
def test_bad_patient_input_is_400_and_writes_nothing(api_client, change):
    api_client.force_authenticate(HealthWorkerFactory())
    r = api_client.post("/api/v1/patients/", VALID | change, format="json")
    assert r.status_code == 400, r.content
    assert Patient.objects.count() == 0


def test_search_returns_only_own_sites_patients(api_client):
    site = SiteFactory()
    hw = HealthWorkerFactory(site=site)
    PatientFactory(site=site, name="김철수")
    PatientFactory(name="김영희")  # another site
    api_client.force_authenticate(hw)
    rows = api_client.get("/api/v1/patients/?q=김").json()["results"]
    assert [p["name"] for p in rows] == ["김철수"]


def test_other_sites_patient_is_404_even_by_guessed_id(api_client):
    other = PatientFactory()
    api_client.force_authenticate(HealthWorkerFactory())
    assert api_client.get(f"/api/v1/patients/{other.id}/").status_code == 404
