"""The screening API gives the result of record beside the AI's result: the final triage, its
source (the AI, or a grader), who settled it and when; scoped to the caller's site like the rest
of the screening API, and documented in the OpenAPI schema."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Role
from screening.result_of_record import screening_result_of_record_set
from tests.factories import HealthWorkerFactory, ScreeningFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    return SiteFactory()


@pytest.fixture
def worker(site):
    return HealthWorkerFactory(site=site)


@pytest.fixture
def grader():
    return UserFactory(role=Role.GRADER, username="grader-ann", first_name="Ann", last_name="Lee")


@pytest.fixture
def screening(site):
    return ScreeningFactory(
        site=site,
        patient__site=site,
        triage="referable",
        findings=["D"],
        completed_at=timezone.now() - dt.timedelta(hours=2),
    )


def settle(screening, grader, *, triage: str, findings: list[str]):
    return screening_result_of_record_set(
        screening_id=screening.pk,
        triage=triage,
        findings=findings,
        source="grader",
        by_user_id=grader.pk,
    )


def detail(api_client, user, screening, **headers):
    api_client.force_authenticate(user)
    response = api_client.get(f"/api/v1/screenings/{screening.pk}/", **headers)
    assert response.status_code == 200, response.content
    return response.json()


def test_an_ai_only_result_is_its_own_result_of_record(api_client, worker, screening):
    body = detail(api_client, worker, screening, HTTP_ACCEPT_LANGUAGE="en")
    record = body["result_of_record"]
    assert record["triage"] == "referable" and record["findings"] == ["D"]
    assert record["source"] == "ai" and record["by"] is None and record["changed"] is False
    assert record["next_step"] == "Refer to an eye clinic (routine)."
    # For the AI's result, "when" is when it finished.
    assert dt.datetime.fromisoformat(record["at"]) == screening.completed_at


def test_a_grader_who_changed_it_is_named_beside_the_ai_result(
    api_client, worker, screening, grader
):
    settled = settle(screening, grader, triage="urgent", findings=["G"])
    body = detail(api_client, worker, screening, HTTP_ACCEPT_LANGUAGE="en")
    # The AI's result is where it always was.
    assert (body["triage"], body["findings"]) == ("referable", ["D"])
    assert body["next_step"] == "Refer to an eye clinic (routine)."
    record = body["result_of_record"]
    assert record["triage"] == "urgent" and record["findings"] == ["G"]
    assert record["source"] == "grader" and record["changed"] is True
    assert record["by"] == {"id": grader.pk, "name": "Ann Lee"}
    assert dt.datetime.fromisoformat(record["at"]) == settled.final_at
    assert record["next_step"].startswith("Urgent referral")


def test_a_grader_who_confirmed_it_is_not_a_change(api_client, worker, screening, grader):
    settle(screening, grader, triage="referable", findings=["D"])
    record = detail(api_client, worker, screening)["result_of_record"]
    assert record["source"] == "grader" and record["changed"] is False
    assert record["by"]["name"] == "Ann Lee"


def test_the_next_step_of_record_is_in_the_callers_language(api_client, site, screening, grader):
    settle(screening, grader, triage="urgent", findings=["G"])
    korean = HealthWorkerFactory(site=site, preferred_language="ko")
    record = detail(api_client, korean, screening, HTTP_ACCEPT_LANGUAGE="ko")["result_of_record"]
    assert record["next_step"] == "긴급 의뢰: 24시간 안에 안과 진료를 받아야 합니다."


def test_a_screening_without_a_result_has_no_result_of_record(api_client, worker, site):
    queued = ScreeningFactory(site=site, patient__site=site, status="queued", triage="")
    assert detail(api_client, worker, queued)["result_of_record"] is None


def test_another_sites_health_worker_cannot_see_it(api_client, screening, grader):
    settle(screening, grader, triage="urgent", findings=["G"])
    outsider = HealthWorkerFactory(site=SiteFactory())
    api_client.force_authenticate(outsider)
    assert api_client.get(f"/api/v1/screenings/{screening.pk}/").status_code == 404
    page = api_client.get("/api/v1/screenings/").json()
    assert page["count"] == 0 and page["results"] == []


def test_the_list_carries_it_without_a_query_per_row(
    api_client, worker, site, grader, django_assert_max_num_queries
):
    def add_graded(n: int) -> None:
        for _ in range(n):
            s = ScreeningFactory(site=site, patient__site=site, triage="normal")
            settle(s, UserFactory(role=Role.GRADER), triage="referable", findings=["C"])

    add_graded(2)
    api_client.force_authenticate(worker)
    with django_assert_max_num_queries(30) as small:
        first = api_client.get("/api/v1/screenings/").json()
    assert {r["result_of_record"]["source"] for r in first["results"]} == {"grader"}
    add_graded(6)
    with django_assert_max_num_queries(len(small.captured_queries)):
        page = api_client.get("/api/v1/screenings/").json()
    assert page["count"] == 8
    assert all(r["result_of_record"]["by"]["name"] for r in page["results"])


def test_the_schema_documents_the_result_of_record(api_client):
    schema = api_client.get("/api/v1/schema/?format=json").json()
    components = schema["components"]["schemas"]
    output = components["ScreeningOutput"]["properties"]
    assert "result_of_record" in output
    record = components["ScreeningResultOfRecord"]["properties"]
    assert {"triage", "next_step", "findings", "source", "by", "at", "changed"} <= set(record)
    # The source's values are named in the schema (an enum component or inline).
    source = record["source"]
    if "$ref" in source or "allOf" in source:
        ref = (source.get("$ref") or source["allOf"][0]["$ref"]).rsplit("/", 1)[-1]
        source = components[ref]
    assert set(source["enum"]) >= {"ai", "grader"}
    assert "result_of_record" in components["ScreeningCreated"]["properties"]
