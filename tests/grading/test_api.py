"""The grading API: the queue (paginated), a case, a read (400 on bad input, 404 on a foreign
case, 409 when the case moved on), the FHIR export (performer, derivedFrom), the schema."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from grading.models import GraderRead
from tests.factories import SiteFactory
from tests.fhir_validation import r4b
from tests.grading.factories import ReadingCentreFactory, case_for

pytestmark = pytest.mark.django_db

AGREE = {
    "eyes": [
        {"eye": "left", "gradable": True, "findings": ["D"], "dr_grade": "moderate"},
        {"eye": "right", "gradable": True, "findings": []},
    ],
    "next_step": "referable",
    "note": "hard exudates near the fovea",
}


def test_the_queue_is_paginated_and_urgent_first(api_client, site, graders):
    routine = [case_for(site) for _ in range(3)]
    urgent = case_for(site, triage="urgent")
    api_client.force_authenticate(graders[0])
    page = api_client.get("/api/v1/grading/queue/?limit=2").json()
    assert page["count"] == 4 and page["next"]
    assert [row["id"] for row in page["results"]] == [urgent.pk, routine[0].pk]
    row = page["results"][0]
    assert row["screening"] == urgent.screening_id and row["urgent"] is True
    assert row["stage"] == "primary" and row["ai_triage"] == "urgent"
    assert set(row["patient"]) == {"id", "pseudonym"}  # no name: graders read pseudonymised


def test_a_case_shows_the_photos_probabilities_and_risk_factors(api_client, site, graders):
    case = case_for(site)
    patient = case.screening.patient
    patient.has_diabetes = True
    patient.save()
    api_client.force_authenticate(graders[0])
    body = api_client.get(f"/api/v1/grading/screenings/{case.screening_id}/").json()
    assert body["id"] == case.pk and body["patient"]["risk_factors"] == ["has_diabetes"]
    assert {e["eye"] for e in body["eyes"]} == {"left", "right"}
    assert body["eyes"][0]["image"].startswith("http://testserver/screening/images/")
    assert body["eyes"][0]["probabilities"]["N"] == 0.9
    assert body["result_of_record"]["source"] == "ai"
    assert body["reads"] == []


def test_posting_a_read_records_it_and_answers_201(api_client, site, graders):
    case = case_for(site, triage="referable", findings=["D"])
    api_client.force_authenticate(graders[0])
    r = api_client.post(
        f"/api/v1/grading/screenings/{case.screening_id}/reads/", AGREE, format="json"
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["read"]["role"] == "primary" and body["read"]["final"] is True
    assert body["case"]["stage"] == "final"
    assert body["read"]["eyes"][0] == {
        "eye": "left",
        "gradable": True,
        "findings": ["D"],
        "dr_grade": "moderate",
    }
    # Audited by the URL audit: who wrote what, for which screening and patient.
    event = AuditEvent.objects.filter(url_name="grading-reads").get()
    assert (event.action, event.object_ids, event.status_code) == (
        "update",
        [str(case.screening_id)],
        201,
    )


@pytest.mark.parametrize(
    "body",
    [
        {**AGREE, "status": "final"},  # an unknown field
        {**AGREE, "next_step": "later"},
        {**AGREE, "eyes": []},
        {**AGREE, "eyes": [{"eye": "left", "gradable": True, "findings": ["Z"]}]},
        {**AGREE, "eyes": [{"eye": "left", "gradable": True, "colour": "red"}]},
        {
            **AGREE,
            "eyes": [
                {"eye": "left", "gradable": True, "findings": ["D"]},
                {"eye": "right", "gradable": True},
            ],
        },  # D without a grade
        {**AGREE, "eyes": [{"eye": "left", "gradable": True}]},  # the right eye is missing
    ],
)
def test_bad_input_is_a_400(api_client, site, graders, body):
    case = case_for(site)
    api_client.force_authenticate(graders[0])
    r = api_client.post(
        f"/api/v1/grading/screenings/{case.screening_id}/reads/", body, format="json"
    )
    assert r.status_code == 400, r.content
    assert not GraderRead.objects.exists()


def test_another_centres_case_is_404(api_client, site, graders):
    foreign = case_for(SiteFactory())
    ReadingCentreFactory(sites=[foreign.screening.site])
    api_client.force_authenticate(graders[0])
    sid = foreign.screening_id
    assert api_client.get(f"/api/v1/grading/screenings/{sid}/").status_code == 404
    assert (
        api_client.post(
            f"/api/v1/grading/screenings/{sid}/reads/", AGREE, format="json"
        ).status_code
        == 404
    )
    assert api_client.get(f"/api/v1/grading/screenings/{sid}/fhir/").status_code == 404
    assert api_client.get("/api/v1/grading/queue/").json()["count"] == 0


def test_a_read_for_a_stage_the_case_left_is_409_and_a_second_read_by_the_same_grader_403(
    api_client, site, graders
):
    case = case_for(site, triage="referable")
    url = f"/api/v1/grading/screenings/{case.screening_id}/reads/"
    disagree = {**AGREE, "eyes": [{"eye": e, "gradable": True} for e in ("left", "right")]}
    disagree["next_step"] = "normal"
    api_client.force_authenticate(graders[0])
    assert api_client.post(url, {**disagree, "stage": "primary"}, format="json").status_code == 201
    assert api_client.post(url, disagree, format="json").status_code == 403
    api_client.force_authenticate(graders[1])
    moved = api_client.post(url, {**disagree, "stage": "primary"}, format="json")
    assert moved.status_code == 409 and moved.json()["stage"] == "secondary"


def test_the_second_reader_does_not_see_the_first_read_but_the_arbitrator_does(
    api_client, site, graders
):
    case = case_for(site, triage="referable")
    url = f"/api/v1/grading/screenings/{case.screening_id}/"
    normal = {
        "eyes": [{"eye": e, "gradable": True} for e in ("left", "right")],
        "next_step": "normal",
    }
    api_client.force_authenticate(graders[0])
    api_client.post(url + "reads/", normal, format="json")
    api_client.force_authenticate(graders[1])
    assert api_client.get(url).json()["reads"] == []
    api_client.post(url + "reads/", AGREE, format="json")
    api_client.force_authenticate(graders[2])
    reads = api_client.get(url).json()["reads"]
    assert [r["role"] for r in reads] == ["primary", "secondary"]


def test_the_fhir_export_names_the_grader_and_derives_from_the_ai_observations(
    api_client, site, graders
):
    case = case_for(site, triage="referable", findings=["D"])
    graders[0].first_name, graders[0].last_name = "Ann", "Lee"
    graders[0].save()
    api_client.force_authenticate(graders[0])
    api_client.post(f"/api/v1/grading/screenings/{case.screening_id}/reads/", AGREE, format="json")
    r = api_client.get(
        f"/api/v1/grading/screenings/{case.screening_id}/fhir/",
        HTTP_ACCEPT="application/fhir+json",
    )
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/fhir+json")
    bundle = r.json()
    r4b(bundle)  # valid R4B, and every in-Bundle reference resolves to an entry
    resources = [e["resource"] for e in bundle["entry"]]
    full_urls = {
        e["resource"]["id"]: e["fullUrl"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
    }
    grader_reads = [
        o
        for o in resources
        if o["resourceType"] == "Observation" and o["id"].startswith("grading-")
    ]
    assert len(grader_reads) == 2  # one per eye
    left = next(o for o in grader_reads if o["id"].endswith("-left"))
    assert left["performer"] == [
        {
            "type": "Practitioner",
            "identifier": {
                "system": "https://eyebridge.example/fhir/sid/user",
                "value": str(graders[0].pk),
            },
            "display": "Ann Lee",
        }
    ]
    ai_left = {full_urls[f"{case.screening_id}-left-{c}"] for c in ("N", "D", "G")}
    assert {ref["reference"] for ref in left["derivedFrom"]} == ai_left
    assert left["valueCodeableConcept"]["coding"][0]["code"] == "referable"
    components = {c["code"]["coding"][0]["code"]: c for c in left["component"]}
    assert components["D"]["valueBoolean"] is True
    assert components["dr-grade"]["valueCodeableConcept"]["coding"][0]["code"] == "moderate"
    assert components["result-of-record"]["valueBoolean"] is True
    assert left["note"] == [{"text": "hard exudates near the fovea"}]


def test_the_schema_documents_the_grading_operations(api_client):
    schema = api_client.get("/api/v1/schema/?format=json").json()
    paths = schema["paths"]
    assert "get" in paths["/api/v1/grading/queue/"]
    read = paths["/api/v1/grading/screenings/{screening_id}/reads/"]["post"]
    assert {"201", "400", "403", "404", "409"} <= set(read["responses"])
    assert "get" in paths["/api/v1/grading/screenings/{screening_id}/fhir/"]


def test_another_role_sees_an_empty_queue(api_client, site):
    from tests.factories import HealthWorkerFactory

    case_for(site)
    api_client.force_authenticate(HealthWorkerFactory(site=site))
    assert api_client.get("/api/v1/grading/queue/").json()["count"] == 0


def test_a_grader_of_no_centre_sees_nothing(api_client, site):
    from accounts.models import Role
    from tests.factories import UserFactory

    case = case_for(site)
    api_client.force_authenticate(UserFactory(role=Role.GRADER))
    assert api_client.get("/api/v1/grading/queue/").json()["count"] == 0
    assert api_client.get(f"/api/v1/grading/screenings/{case.screening_id}/").status_code == 404
