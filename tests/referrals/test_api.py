"""The referral API: candidates, lifecycle endpoints, scoping, bad input, FHIR."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from referrals.models import Referral, ReferralStatus
from tests.factories import (
    AdminFactory,
    HealthWorkerFactory,
    PatientFactory,
    ScreeningFactory,
    SiteFactory,
    UserFactory,
)
from tests.referrals.factories import HospitalFactory, HospitalStaffFactory, ReferralFactory

pytestmark = pytest.mark.django_db
S = ReferralStatus


@pytest.fixture
def seoul_hospitals():
    return [
        HospitalFactory(
            name="서울대학교병원",
            latitude=37.5796,
            longitude=126.9990,
            specialties=["retina", "general"],
        ),
        HospitalFactory(
            name="세브란스병원", latitude=37.5622, longitude=126.9410, specialties=["glaucoma"]
        ),
    ]


@pytest.fixture
def screening():
    return ScreeningFactory(triage="referable", findings=["D"])


def login(api_client, user):
    api_client.force_authenticate(user)
    return api_client


def test_candidates_are_ranked_with_distance_specialties_score_and_reasons(
    api_client, screening, seoul_hospitals
):
    login(api_client, screening.health_worker)
    response = api_client.get(
        "/api/v1/referrals/candidates/", {"screening": screening.pk}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["radius_km"] == 25.0 or body["radius_km"] >= 25.0
    assert body["origin"] == {"latitude": 37.5665, "longitude": 126.978, "source": "site"}
    first = body["candidates"][0]
    assert first["hospital"]["name"] == "서울대학교병원"
    assert first["distance_km"] == pytest.approx(2.37, abs=0.05)
    assert first["specialties"] == ["retina"]
    assert isinstance(first["score"], float)
    assert any("km away" in r for r in first["reasons"])


def test_candidates_with_an_origin_override_and_specialties(api_client, screening, seoul_hospitals):
    login(api_client, screening.health_worker)
    response = api_client.get(
        "/api/v1/referrals/candidates/",
        {
            "screening": screening.pk,
            "latitude": "35.1151",
            "longitude": "129.0422",
            "specialties": "glaucoma",
        },
    )
    body = response.json()
    assert response.status_code == 200
    assert body["origin"]["source"] == "override"
    assert body["candidates"][0]["hospital"]["name"] == "세브란스병원"
    assert body["candidates"][0]["distance_km"] == pytest.approx(329.0, rel=0.01)


def test_candidates_nothing_in_range_is_empty_with_the_radius(api_client, screening):
    login(api_client, screening.health_worker)
    response = api_client.get("/api/v1/referrals/candidates/", {"screening": screening.pk})
    assert response.status_code == 200
    assert response.json()["candidates"] == []
    assert response.json()["radius_km"] == 400.0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"latitude": "NaN", "longitude": "127"}, "latitude"),
        ({"latitude": "37", "longitude": "Infinity"}, "longitude"),
        ({"latitude": "95", "longitude": "127"}, "latitude"),
        ({"latitude": "37", "longitude": "-181"}, "longitude"),
        ({"latitude": "37"}, "longitude"),
        ({"specialties": "retina,astrology"}, "specialties"),
        ({"specialties": " , "}, "specialties"),
    ],
)
def test_candidates_bad_input_is_a_400_with_the_field(
    api_client, screening, seoul_hospitals, params, field
):
    login(api_client, screening.health_worker)
    response = api_client.get(
        "/api/v1/referrals/candidates/", {"screening": screening.pk, **params}
    )
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field


@pytest.mark.parametrize("value", ["abc", "-1", "99999999999999999999999", ""])
def test_candidates_bad_screening_id_is_a_400(api_client, screening, value):
    login(api_client, screening.health_worker)
    assert api_client.get("/api/v1/referrals/candidates/", {"screening": value}).status_code == 400


def test_candidates_without_any_origin_is_a_clear_400(api_client, seoul_hospitals):
    site = SiteFactory(latitude=None, longitude=None)
    screening = ScreeningFactory(
        patient=PatientFactory(site=site), triage="referable", findings=["G"]
    )
    login(api_client, screening.health_worker)
    response = api_client.get("/api/v1/referrals/candidates/", {"screening": screening.pk})
    assert response.status_code == 400
    assert response.json()["code"] == "no_origin"


def test_candidates_for_another_sites_screening_is_404(api_client, screening, seoul_hospitals):
    login(api_client, HealthWorkerFactory(site=SiteFactory()))
    assert (
        api_client.get("/api/v1/referrals/candidates/", {"screening": screening.pk}).status_code
        == 404
    )


def test_anonymous_gets_nothing(api_client, screening):
    referral = ReferralFactory(screening=screening)
    for url in (
        "/api/v1/referrals/",
        f"/api/v1/referrals/{referral.pk}/",
        f"/api/v1/referrals/candidates/?screening={screening.pk}",
    ):
        assert api_client.get(url).status_code in (401, 403)
    assert api_client.post(
        f"/api/v1/referrals/{referral.pk}/decline/", {"reason": "x"}
    ).status_code in (401, 403)
    referral.refresh_from_db()
    assert referral.status == S.SENT


def test_send_accept_attended_complete_over_the_api(api_client, screening, seoul_hospitals):
    login(api_client, screening.health_worker)
    response = api_client.post(
        "/api/v1/referrals/",
        {"screening": screening.pk, "hospital": seoul_hospitals[0].pk},
        format="json",
    )
    assert response.status_code == 201, response.content
    referral_id = response.json()["id"]
    assert response.json()["status"] == "sent"
    staff = HospitalStaffFactory(hospital=seoul_hospitals[0])
    login(api_client, staff)
    when = (timezone.now() + dt.timedelta(days=4)).isoformat()
    response = api_client.post(
        f"/api/v1/referrals/{referral_id}/accept/", {"appointment_at": when}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted"
    assert (
        api_client.post(f"/api/v1/referrals/{referral_id}/attended/", {}, format="json").status_code
        == 200
    )
    response = api_client.post(
        f"/api/v1/referrals/{referral_id}/complete/", {"diagnosis": "PDR, PRP done"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["diagnosis"] == "PDR, PRP done"
    assert [e["kind"] for e in response.json()["events"]] == [
        "sent",
        "accepted",
        "attended",
        "completed",
    ]


def test_no_show_then_resend(api_client, seoul_hospitals):
    referral = ReferralFactory(
        hospital=seoul_hospitals[0],
        status=S.ACCEPTED,
        appointment_at=timezone.now() + dt.timedelta(days=1),
    )
    login(api_client, HospitalStaffFactory(hospital=seoul_hospitals[0]))
    assert (
        api_client.post(f"/api/v1/referrals/{referral.pk}/no-show/", {}, format="json").status_code
        == 200
    )
    login(api_client, referral.screening.health_worker)
    response = api_client.post(
        "/api/v1/referrals/",
        {"screening": referral.screening_id, "hospital": seoul_hospitals[1].pk},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["id"] == referral.pk


def test_decline_without_reason_is_400_and_writes_nothing(api_client, seoul_hospitals):
    referral = ReferralFactory(hospital=seoul_hospitals[0])
    login(api_client, HospitalStaffFactory(hospital=seoul_hospitals[0]))
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        assert (
            api_client.post(
                f"/api/v1/referrals/{referral.pk}/decline/", body, format="json"
            ).status_code
            == 400
        )
    referral.refresh_from_db()
    assert referral.status == S.SENT and not referral.events.exists()


@pytest.mark.parametrize("value", ["not a date", "", "2020-01-01T09:00:00Z", "9999-99-99"])
def test_accept_with_a_bad_appointment_is_400(api_client, seoul_hospitals, value):
    referral = ReferralFactory(hospital=seoul_hospitals[0])
    login(api_client, HospitalStaffFactory(hospital=seoul_hospitals[0]))
    response = api_client.post(
        f"/api/v1/referrals/{referral.pk}/accept/", {"appointment_at": value}, format="json"
    )
    assert response.status_code == 400


def test_accepting_an_accepted_referral_is_409(api_client, seoul_hospitals):
    referral = ReferralFactory(
        hospital=seoul_hospitals[0],
        status=S.ACCEPTED,
        appointment_at=timezone.now() + dt.timedelta(days=1),
    )
    login(api_client, HospitalStaffFactory(hospital=seoul_hospitals[0]))
    response = api_client.post(
        f"/api/v1/referrals/{referral.pk}/decline/", {"reason": "full"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["status"] == "accepted"


def test_send_to_unknown_or_closed_hospital_is_400(api_client, screening):
    closed = HospitalFactory(accepts_referrals=False)
    login(api_client, screening.health_worker)
    for hospital in (987654, closed.pk, "x"):
        response = api_client.post(
            "/api/v1/referrals/", {"screening": screening.pk, "hospital": hospital}, format="json"
        )
        assert response.status_code == 400
    assert not Referral.objects.exists()


def test_scoping_of_list_and_detail(api_client, seoul_hospitals):
    mine = ReferralFactory(hospital=seoul_hospitals[0])
    theirs = ReferralFactory(hospital=seoul_hospitals[1])
    staff = HospitalStaffFactory(hospital=seoul_hospitals[0])
    login(api_client, staff)
    ids = [r["id"] for r in api_client.get("/api/v1/referrals/").json()["results"]]
    assert ids == [mine.pk]
    assert api_client.get(f"/api/v1/referrals/{theirs.pk}/").status_code == 404
    assert api_client.get(f"/api/v1/referrals/{theirs.pk}/fhir/").status_code == 404
    assert (
        api_client.post(
            f"/api/v1/referrals/{theirs.pk}/decline/", {"reason": "x"}, format="json"
        ).status_code
        == 404
    )
    # Health worker of the screening's site sees it; of another site does not.
    login(api_client, mine.screening.health_worker)
    assert [r["id"] for r in api_client.get("/api/v1/referrals/").json()["results"]] == [mine.pk]
    assert api_client.get(f"/api/v1/referrals/{theirs.pk}/").status_code == 404
    # A health worker may not accept for the hospital: visible, so 403.
    response = api_client.post(
        f"/api/v1/referrals/{mine.pk}/accept/",
        {"appointment_at": (timezone.now() + dt.timedelta(days=1)).isoformat()},
        format="json",
    )
    assert response.status_code == 403
    # A user with no role or organisation sees nothing.
    login(api_client, UserFactory())
    assert api_client.get("/api/v1/referrals/").json()["results"] == []
    assert api_client.get(f"/api/v1/referrals/{mine.pk}/").status_code == 404
    login(api_client, AdminFactory())
    assert len(api_client.get("/api/v1/referrals/").json()["results"]) == 2


def test_list_query_count_does_not_grow_with_rows(api_client, seoul_hospitals):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    staff = HospitalStaffFactory(hospital=seoul_hospitals[0])
    login(api_client, staff)
    counts = []
    for rows in (1, 6):
        while Referral.objects.count() < rows:
            ReferralFactory(hospital=seoul_hospitals[0])
        with CaptureQueriesContext(connection) as queries:
            assert len(api_client.get("/api/v1/referrals/").json()["results"]) == rows
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_fhir_bundle_has_a_service_request_and_a_task(api_client, seoul_hospitals):
    referral = ReferralFactory(
        hospital=seoul_hospitals[0], status=S.DECLINED, decline_reason="No slots"
    )
    login(api_client, referral.screening.health_worker)
    response = api_client.get(f"/api/v1/referrals/{referral.pk}/fhir/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json; fhirVersion=4.3"
    for accept in (
        "application/fhir+json",
        "application/fhir+json; fhirVersion=4.0",
        "application/json",
    ):
        again = api_client.get(f"/api/v1/referrals/{referral.pk}/fhir/", HTTP_ACCEPT=accept)
        assert again.status_code == 200, (accept, again.status_code)
        assert again["Content-Type"].startswith(accept.split(";")[0])
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    request, task = (e["resource"] for e in bundle["entry"])
    assert request["resourceType"] == "ServiceRequest" and request["status"] == "active"
    assert request["priority"] == "routine"
    assert request["reasonCode"][0]["coding"][0]["code"] == "D"
    assert request["performer"][0]["display"] == "서울대학교병원"
    assert task["resourceType"] == "Task" and task["status"] == "rejected"
    assert task["statusReason"]["text"] == "No slots"
    assert task["focus"]["reference"] == bundle["entry"][0]["fullUrl"]
    assert task["for"]["identifier"]["value"] == referral.screening.patient.pseudonym


def test_openapi_schema_documents_the_referral_endpoints(api_client):
    login(api_client, AdminFactory())
    response = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    for path in (
        "/api/v1/referrals/candidates/",
        "/api/v1/referrals/{referral_id}/accept/",
        "/api/v1/referrals/{referral_id}/fhir/",
    ):
        assert path in text
    assert '"409"' in text or "'409'" in text or "409:" in text


def test_triage_reasons_are_objects_with_a_sentence_never_a_python_repr(
    api_client, client, seoul_hospitals
):
    referral = ReferralFactory(hospital=seoul_hospitals[0])
    screening = referral.screening
    screening.reasons = [
        {"code": "finding", "eye": "left", "class": "D", "probability": 0.61, "threshold": 0.3},
        {"code": "exam_symptom", "symptom": "blurred_vision"},
    ]
    screening.save(update_fields=["reasons"])
    login(api_client, screening.health_worker)
    body = api_client.get(f"/api/v1/referrals/{referral.pk}/").json()
    first, second = body["triage_reasons"]
    assert first["code"] == "finding" and first["class"] == "D" and first["eye"] == "left"
    assert "{" not in first["text"] and first["text"]
    assert second["code"] == "exam_symptom" and second["text"]
    for user in (screening.health_worker, HospitalStaffFactory(hospital=seoul_hospitals[0])):
        client.force_login(user)
        page = client.get(f"/referrals/{referral.pk}/").content.decode()
        assert "{&#x27;" not in page and "{'" not in page
        assert "61%" in page  # the finding as a sentence, in either language
