"""The referral page and the health worker's result page say what a grader made of the AI's
result: "AI result, confirmed by grader X", or "changed by grader X" with the final next step, in
Korean and English, with the grader's name (never an object's repr)."""

from __future__ import annotations

import pytest

from accounts.models import Role
from grading import services as grading
from referrals.models import ReferralStatus
from referrals.presenters import grader_verdict
from screening.models import Screening
from screening.result_of_record import screening_result_of_record_set
from tests.factories import HealthWorkerFactory, ScreeningFactory, SiteFactory, UserFactory
from tests.grading.factories import GraderFactory, ReadingCentreFactory, case_for
from tests.referrals.factories import HospitalStaffFactory, ReferralFactory

pytestmark = pytest.mark.django_db

CONFIRMED = {
    "en": "AI result, confirmed by grader Ann Lee",
    "ko": "AI 결과, 판독자 Ann Lee 확인",
}
CHANGED = {"en": "Changed by grader Ann Lee", "ko": "판독자 Ann Lee 변경"}
WHAT_TO_DO = {"en": "What to do now", "ko": "지금 할 일"}
URGENT_NEXT_STEP = {
    "en": "Urgent referral: the patient should see an eye doctor within 24 hours.",
    "ko": "긴급 의뢰: 24시간 안에 안과 진료를 받아야 합니다.",
}
AI_REFERABLE = {"en": "AI: Referable: routine referral", "ko": "AI: 의뢰 필요: 일반 의뢰"}
GLAUCOMA = {"en": "Glaucoma", "ko": "녹내장"}
RESCREEN = {"en": "Rescreen in 12 months.", "ko": "12개월 후 재검진하세요."}


@pytest.fixture
def site():
    return SiteFactory()


@pytest.fixture
def grader():
    return UserFactory(role=Role.GRADER, username="grader-ann", first_name="Ann", last_name="Lee")


@pytest.fixture
def referral(site):
    screening = ScreeningFactory(site=site, patient__site=site, triage="referable", findings=["D"])
    return ReferralFactory(screening=screening, status=ReferralStatus.SENT)


def settle(screening: Screening, grader, *, triage: str, findings: list[str]) -> None:
    screening_result_of_record_set(
        screening_id=screening.pk,
        triage=triage,
        findings=findings,
        source="grader",
        by_user_id=grader.pk,
    )


def viewer(kind: str, referral, language: str):
    if kind == "health_worker":
        return HealthWorkerFactory(site=referral.screening.site, preferred_language=language)
    return HospitalStaffFactory(hospital=referral.hospital, preferred_language=language)


def referral_page(client, user, referral) -> str:
    client.force_login(user)
    response = client.get(f"/referrals/{referral.pk}/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("language", ["en", "ko"])
@pytest.mark.parametrize("kind", ["health_worker", "hospital"])
def test_the_referral_page_says_the_grader_confirmed_the_ai(
    client, referral, grader, language, kind
):
    settle(referral.screening, grader, triage="referable", findings=["D"])
    page = referral_page(client, viewer(kind, referral, language), referral)
    assert CONFIRMED[language] in page
    assert CHANGED[language] not in page
    # Confirmed: the AI's result is the result, so no second next step is shown.
    assert WHAT_TO_DO[language] not in page


@pytest.mark.parametrize("language", ["en", "ko"])
@pytest.mark.parametrize("kind", ["health_worker", "hospital"])
def test_the_referral_page_says_the_grader_changed_it_with_the_final_next_step(
    client, referral, grader, language, kind
):
    settle(referral.screening, grader, triage="urgent", findings=["G"])
    page = referral_page(client, viewer(kind, referral, language), referral)
    assert CHANGED[language] in page
    assert CONFIRMED[language] not in page
    assert WHAT_TO_DO[language] in page and URGENT_NEXT_STEP[language] in page
    assert GLAUCOMA[language] in page  # the grader's finding
    assert AI_REFERABLE[language] in page  # the AI's own result, labelled as the AI's


def test_a_change_of_findings_alone_is_a_change(client, referral, grader):
    settle(referral.screening, grader, triage="referable", findings=["D", "G"])
    page = referral_page(client, viewer("health_worker", referral, "en"), referral)
    assert CHANGED["en"] in page


def test_no_grader_line_while_the_ai_result_stands_alone(client, referral):
    page = referral_page(client, viewer("health_worker", referral, "en"), referral)
    assert "confirmed by grader" not in page and "Changed by grader" not in page
    assert grader_verdict(referral.screening) is None


def test_a_grader_without_a_full_name_is_named_by_username_never_by_repr(client, referral):
    nameless = UserFactory(role=Role.GRADER, username="reader-7", first_name="", last_name="")
    settle(referral.screening, nameless, triage="referable", findings=["D"])
    page = referral_page(client, viewer("health_worker", referral, "en"), referral)
    assert "AI result, confirmed by grader reader-7" in page
    assert "&lt;User" not in page and "User object" not in page


def test_the_verdict_is_built_from_the_result_of_record(referral, grader):
    settle(referral.screening, grader, triage="urgent", findings=["G"])
    screening = Screening.objects.select_related("final_by").get(pk=referral.screening_id)
    verdict = grader_verdict(screening)
    assert verdict["changed"] is True and verdict["grader"] == "Ann Lee"
    assert verdict["triage"] == "urgent" and [c for c, _ in verdict["findings"]] == ["G"]
    # The AI's own result is untouched.
    assert (screening.triage, screening.findings) == ("referable", ["D"])


# --- the health worker's result page (the grading panel, registered by grading) -------------
@pytest.fixture
def graders(site):
    centre = ReadingCentreFactory(sites=[site])
    return [
        GraderFactory(centre=centre, first_name="Ann", last_name="Lee"),
        GraderFactory(centre=centre, first_name="Ben", last_name="Kim"),
    ]


def read(next_step: str, findings=()) -> grading.ReadInput:
    return grading.ReadInput(
        eyes=[
            grading.EyeReadInput(
                eye=eye,
                gradable=True,
                findings=list(findings),
                dr_grade="mild" if "D" in findings else "",
            )
            for eye in ("left", "right")
        ],
        next_step=next_step,
    )


def result_page(client, screening, language: str) -> str:
    worker = HealthWorkerFactory(site=screening.site, preferred_language=language)
    client.force_login(worker)
    response = client.get(f"/screening/screenings/{screening.pk}/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_result_page_says_confirmed_by_the_grader(client, site, graders, language):
    case = case_for(site, triage="referable", findings=["D"])
    grading.grader_read_submit(
        user=graders[0], screening_id=case.screening_id, data=read("referable", ["D"])
    )
    page = result_page(client, case.screening, language)
    assert CONFIRMED[language] in page


@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_result_page_says_changed_by_the_grader_with_the_next_step(
    client, site, graders, language
):
    case = case_for(site, triage="referable", findings=["D"])
    normal = read("normal")
    # The first read disagrees with the AI on the refer question, the second agrees with the
    # first: final, and the final read is Ben's.
    for grader in graders:
        grading.grader_read_submit(user=grader, screening_id=case.screening_id, data=normal)
    page = result_page(client, case.screening, language)
    assert {"en": "Changed by grader Ben Kim", "ko": "판독자 Ben Kim 변경"}[language] in page
    assert CHANGED[language] not in page  # Ann read first, but Ben's read settled it
    assert WHAT_TO_DO[language] in page and RESCREEN[language] in page


@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_result_page_says_changed_when_the_primary_read_settles_it(
    client, site, graders, language
):
    case = case_for(site, triage="referable", findings=["D"])
    # Urgent agrees with referable on the refer question: Ann's read is final at once.
    grading.grader_read_submit(
        user=graders[0], screening_id=case.screening_id, data=read("urgent", ["G"])
    )
    page = result_page(client, case.screening, language)
    assert CHANGED[language] in page
    assert WHAT_TO_DO[language] in page and URGENT_NEXT_STEP[language] in page
