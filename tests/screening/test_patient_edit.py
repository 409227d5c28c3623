"""Patient edit at a later visit (issue 16.2): risk factors and demographics, in the portal and
the API, audited, with the duplicate check rerun; bad input changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import AuditEvent
from screening.models import Patient
from tests.factories import HealthWorkerFactory, PatientFactory, SiteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def hw():
    return HealthWorkerFactory()


@pytest.fixture
def patient(hw):
    return PatientFactory(
        site=hw.site_membership.site,
        name="김영희",
        birth_date=dt.date(1950, 4, 1),
        phone="010-1111-0001",
        region="강원특별자치도 정선군",
        home_latitude=37.3807,
        home_longitude=128.6608,
    )


def service_events(patient):
    return AuditEvent.objects.filter(
        url_name="screening.services.patient_update", object_ids=[str(patient.pk)]
    )


def snapshot(patient) -> dict:
    return Patient.objects.filter(pk=patient.pk).values().get()


# --- API ------------------------------------------------------------------------------------


def test_patch_updates_risk_factors_and_phone_and_is_audited(api_client, hw, patient):
    api_client.force_authenticate(hw)
    r = api_client.patch(
        f"/api/v1/patients/{patient.pk}/",
        {"has_diabetes": True, "phone": "010-2222-0002"},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["has_diabetes"] is True and r.json()["phone"] == "010-2222-0002"
    patient.refresh_from_db()
    assert patient.has_diabetes and patient.phone == "010-2222-0002"
    assert patient.name == "김영희" and patient.region == "강원특별자치도 정선군"  # untouched
    event = service_events(patient).get()
    assert event.action == "update" and event.actor_id == hw.pk
    assert event.extra["changed"] == ["phone", "has_diabetes"]
    # Only the names of the fields: the old and new values stay out of the trail.
    assert "010-2222-0002" not in str(event.extra) and "010-1111-0001" not in str(event.extra)
    # And the request itself, by the audit middleware.
    assert AuditEvent.objects.filter(
        url_name="api-patient", method="PATCH", action="update", status_code=200
    ).exists()


def test_patch_that_changes_nothing_writes_nothing(api_client, hw, patient):
    api_client.force_authenticate(hw)
    r = api_client.patch(f"/api/v1/patients/{patient.pk}/", {"name": "김영희"}, format="json")
    assert r.status_code == 200
    assert not service_events(patient).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"birth_date": "2999-01-01", "phone": "010-9"}, "birth_date"),
        ({"name": "   ", "has_diabetes": True}, "name"),
        ({"home_latitude": None}, "home_latitude"),
        ({"consent_given": False}, "consent_given"),
        ({"site": 99}, "site"),
        ({"sex": "X"}, "sex"),
    ],
)
def test_invalid_input_is_a_translated_400_and_changes_nothing(
    api_client, hw, patient, body, field
):
    api_client.force_authenticate(hw)
    before = snapshot(patient)
    r = api_client.patch(
        f"/api/v1/patients/{patient.pk}/", body, format="json", HTTP_ACCEPT_LANGUAGE="ko"
    )
    assert r.status_code == 400, r.content
    payload = r.json()
    assert field in payload or payload.get("field") == field, payload
    assert snapshot(patient) == before
    assert not service_events(patient).exists()


def test_an_implausible_birth_date_is_refused_in_korean(api_client, hw, patient):
    api_client.force_authenticate(hw)
    r = api_client.patch(
        f"/api/v1/patients/{patient.pk}/",
        {"birth_date": "2999-01-01"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="ko",
    )
    assert r.status_code == 400
    assert r.json()["detail"] == "생년월일이 올바르지 않습니다."


def test_another_organisations_patient_is_404_and_unchanged(api_client, client, patient):
    other = HealthWorkerFactory(site=SiteFactory())
    before = snapshot(patient)
    api_client.force_authenticate(other)
    r = api_client.patch(f"/api/v1/patients/{patient.pk}/", {"has_diabetes": True}, format="json")
    assert r.status_code == 404
    # Even with a bad body: not found comes first, nothing is said about the fields.
    r = api_client.patch(f"/api/v1/patients/{patient.pk}/", {"site": 1}, format="json")
    assert r.status_code == 404
    client.force_login(other)
    assert client.get(f"/screening/patients/{patient.pk}/edit/").status_code == 404
    post = client.post(f"/screening/patients/{patient.pk}/edit/", {"name": "x"})
    assert post.status_code == 404
    assert snapshot(patient) == before


def test_the_duplicate_check_is_rerun_on_a_change_of_name_or_birth_date(api_client, hw, patient):
    twin = PatientFactory(
        site=patient.site, name="박철수", birth_date=dt.date(1948, 2, 2), phone="010-3333-0003"
    )
    api_client.force_authenticate(hw)
    change = {"name": "박철수", "birth_date": "1948-02-02"}
    r = api_client.patch(f"/api/v1/patients/{patient.pk}/", change, format="json")
    assert r.status_code == 409
    assert [d["id"] for d in r.json()["duplicates"]] == [twin.pk]
    patient.refresh_from_db()
    assert patient.name == "김영희"
    # The same phone as another patient is a possible duplicate too.
    r = api_client.patch(
        f"/api/v1/patients/{patient.pk}/", {"phone": "010-3333-0003"}, format="json"
    )
    assert r.status_code == 409
    # Confirmed by the health worker: saved.
    r = api_client.patch(
        f"/api/v1/patients/{patient.pk}/", change | {"allow_duplicate": True}, format="json"
    )
    assert r.status_code == 200
    patient.refresh_from_db()
    assert (patient.name, patient.birth_date) == ("박철수", dt.date(1948, 2, 2))
    # A risk-factor change of an accepted duplicate is not asked again.
    r = api_client.patch(f"/api/v1/patients/{patient.pk}/", {"high_myopia": True}, format="json")
    assert r.status_code == 200


# --- portal ---------------------------------------------------------------------------------


def form_data(patient, **changes) -> dict:
    data = {
        "name": patient.name,
        "birth_date": patient.birth_date.isoformat(),
        "sex": patient.sex,
        "phone": patient.phone,
        "sido": "51",
        "sigungu": "51770",  # 정선군: the record's region
        # As the page fills them in (the record's exact coordinates, under "advanced").
        "home_latitude": patient.home_latitude,
        "home_longitude": patient.home_longitude,
        "address": patient.address,
        "allergies": patient.allergies,
        "medical_notes": patient.medical_notes,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not False}


def test_the_portal_edit_page_is_filled_in_and_saves_an_audited_change(client, hw, patient):
    client.force_login(hw)
    page = client.get(f"/screening/patients/{patient.pk}/edit/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'value="김영희"' in body and 'value="010-1111-0001"' in body
    assert '<option value="51770" selected>' in body and 'value="37.3807"' in body
    assert "consent_given" not in body
    detail = client.get(f"/screening/patients/{patient.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    assert f'href="/screening/patients/{patient.pk}/edit/"' in detail.content.decode()

    r = client.post(
        f"/screening/patients/{patient.pk}/edit/",
        form_data(patient, family_history_glaucoma="on", phone="010-4444-0004"),
    )
    assert r.status_code == 302 and r["Location"] == f"/screening/patients/{patient.pk}/"
    patient.refresh_from_db()
    assert patient.family_history_glaucoma and patient.phone == "010-4444-0004"
    # The home was not touched: the record's exact coordinates stay.
    assert (patient.home_latitude, patient.home_longitude) == (37.3807, 128.6608)
    assert service_events(patient).get().extra["changed"] == ["phone", "family_history_glaucoma"]
    assert AuditEvent.objects.filter(
        url_name="screening:patient_edit", method="POST", action="update"
    ).exists()


def test_the_portal_refuses_bad_input_with_a_400_and_changes_nothing(client, hw, patient):
    client.force_login(hw)
    before = snapshot(patient)
    r = client.post(
        f"/screening/patients/{patient.pk}/edit/",
        form_data(patient, name="", has_diabetes="on"),
    )
    assert r.status_code == 400
    assert snapshot(patient) == before
    r = client.post(
        f"/screening/patients/{patient.pk}/edit/",
        form_data(patient, birth_date="2999-01-01"),
    )
    assert r.status_code == 400
    assert "Birth date is not plausible." in r.content.decode()
    assert snapshot(patient) == before


def test_the_portal_shows_a_possible_duplicate_and_saves_when_confirmed(client, hw, patient):
    twin = PatientFactory(site=patient.site, name="박철수", birth_date=dt.date(1948, 2, 2))
    client.force_login(hw)
    data = form_data(patient, name="박철수", birth_date="1948-02-02")
    r = client.post(f"/screening/patients/{patient.pk}/edit/", data)
    assert r.status_code == 409
    assert f'href="/screening/patients/{twin.pk}/"' in r.content.decode()
    r = client.post(f"/screening/patients/{patient.pk}/edit/", data | {"allow_duplicate": "on"})
    assert r.status_code == 302
    patient.refresh_from_db()
    assert patient.name == "박철수"
