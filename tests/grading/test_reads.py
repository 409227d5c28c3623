"""Reads and the arbitration rule: the primary agreeing with the AI on the refer question is final;
disagreeing, a second grader reads; a second read disagreeing with the first goes to a third
grader, whose read is final. The AI's result is kept as it was; the final read is the result of
record."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from config.errors import Conflict, Forbidden, InvalidInput
from grading import services
from grading.models import CaseEvent, CaseStage, EyeRead, GraderRead
from screening.models import EyeResult, Screening
from tests.factories import HealthWorkerFactory, SiteFactory
from tests.grading.factories import GraderFactory, ReadingCentreFactory, case_for

pytestmark = pytest.mark.django_db


def read(next_step: str, *, findings=(), dr_grade: str = "", eyes=("left", "right"), note=""):
    return services.ReadInput(
        eyes=[
            services.EyeReadInput(eye=eye, gradable=True, findings=findings, dr_grade=dr_grade)
            for eye in eyes
        ],
        next_step=next_step,
        note=note,
    )


def submit(grader, case, data, **kwargs):
    return services.grader_read_submit(
        user=grader, screening_id=case.screening_id, data=data, **kwargs
    )


def test_a_primary_read_that_agrees_with_the_ai_is_final(site, graders):
    case = case_for(site, triage="referable", findings=["D"])
    primary = submit(graders[0], case, read("urgent", findings=["D"], dr_grade="severe"))
    case.refresh_from_db()
    assert (primary.role, case.stage, case.final_read_id, case.final_refer) == (
        "primary",
        CaseStage.FINAL,
        primary.pk,
        True,
    )
    screening = Screening.objects.get(pk=case.screening_id)
    # The result of record is the grader's; the AI's triage and findings are untouched.
    assert (screening.final_triage, screening.final_findings, screening.final_source) == (
        "urgent",
        ["D"],
        "grader",
    )
    assert screening.final_by_id == graders[0].pk and screening.final_at is not None
    assert (screening.triage, screening.findings) == ("referable", ["D"])
    assert EyeResult.objects.filter(screening=screening).count() == 2
    assert list(case.events.values_list("kind", flat=True)) == ["read", "final"]


def test_disagreement_goes_to_a_second_grader_and_agreement_there_is_final(site, graders):
    case = case_for(site, triage="referable")
    submit(graders[0], case, read("normal", findings=["N"]))
    case.refresh_from_db()
    assert case.stage == CaseStage.SECONDARY
    screening = Screening.objects.get(pk=case.screening_id)
    assert screening.final_source == ""  # not settled yet: the AI's result stands
    second = submit(graders[1], case, read("medication"))
    case.refresh_from_db()
    assert (second.role, case.stage, case.final_read_id, case.final_refer) == (
        "secondary",
        CaseStage.FINAL,
        second.pk,
        False,
    )
    screening.refresh_from_db()
    assert (screening.final_triage, screening.final_by_id) == ("medication", graders[1].pk)


def test_a_second_disagreement_goes_to_arbitration_whose_read_is_final(site, graders):
    case = case_for(site, triage="normal", findings=[])
    submit(graders[0], case, read("referable", findings=["G"]))  # disagrees with the AI
    submit(graders[1], case, read("normal"))  # disagrees with the first read
    case.refresh_from_db()
    assert case.stage == CaseStage.ARBITRATION
    arbitration = submit(graders[2], case, read("referable", findings=["G"], note="cup/disc 0.8"))
    case.refresh_from_db()
    assert (arbitration.role, case.stage, case.final_read_id) == (
        "arbitration",
        CaseStage.FINAL,
        arbitration.pk,
    )
    screening = Screening.objects.get(pk=case.screening_id)
    assert (screening.final_triage, screening.final_findings, screening.final_by_id) == (
        "referable",
        ["G"],
        graders[2].pk,
    )
    assert list(case.events.values_list("kind", flat=True)) == [
        "read",
        "second_read",
        "read",
        "arbitration",
        "read",
        "final",
    ]
    assert GraderRead.objects.filter(case=case).count() == 3


def test_the_same_grader_cannot_read_a_case_twice(site, graders):
    case = case_for(site, triage="referable")
    submit(graders[0], case, read("normal"))
    with pytest.raises(Forbidden) as second:
        submit(graders[0], case, read("normal"))
    assert second.value.code == "already_read"
    submit(graders[1], case, read("referable", findings=["D"], dr_grade="mild"))
    case.refresh_from_db()
    assert case.stage == CaseStage.ARBITRATION
    for earlier in graders[:2]:
        with pytest.raises(Forbidden):
            submit(earlier, case, read("normal"))
    assert GraderRead.objects.filter(case=case).count() == 2


def test_a_final_case_takes_no_more_reads(site, graders):
    case = case_for(site, triage="referable")
    submit(graders[0], case, read("referable", findings=["D"], dr_grade="mild"))
    with pytest.raises(Conflict) as final:
        submit(graders[1], case, read("normal"))
    assert final.value.code == "case_final"


def test_a_read_for_a_stage_the_case_has_left_is_refused(site, graders):
    case = case_for(site, triage="referable")
    submit(graders[0], case, read("normal"), stage="primary")
    with pytest.raises(Conflict) as moved:
        submit(graders[1], case, read("normal"), stage="primary")
    assert moved.value.code == "stage_changed"
    assert moved.value.details["stage"] == "secondary"


def test_only_a_grader_records_a_read(site, graders):
    from tests.factories import AdminFactory

    case = case_for(site)
    with pytest.raises(Forbidden):
        submit(AdminFactory(), case, read("normal"))
    from config.errors import NotFound

    with pytest.raises(NotFound):
        submit(HealthWorkerFactory(site=site), case, read("normal"))
    outsider = GraderFactory(centre=ReadingCentreFactory(sites=[SiteFactory()]))
    with pytest.raises(NotFound):
        submit(outsider, case, read("normal"))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (read("referable", findings=["D"]), "dr_grade_required"),
        (read("referable", findings=["D"], dr_grade="none"), "dr_grade_required"),
        (read("referable", findings=["G"], dr_grade="mild"), "dr_grade_without_d"),
        (read("normal", findings=["N", "G"]), "normal_with_finding"),
        (read("normal", findings=["X"]), "unknown_finding"),
        (read("referable", findings=["D"], dr_grade="bad"), "unknown_dr_grade"),
        (read("normal", eyes=("left",)), "eye_missing"),
        (read("nonsense"), "unknown_next_step"),
        (read("normal", note="x" * 2001), "invalid"),
        (read("normal", note="a\x00b"), "invalid"),
        (
            services.ReadInput(
                eyes=[
                    services.EyeReadInput(eye="left", gradable=False, findings=["D"]),
                    services.EyeReadInput(eye="right", gradable=True),
                ],
                next_step="ungradable",
            ),
            "ungradable_with_findings",
        ),
        (
            services.ReadInput(
                eyes=[
                    services.EyeReadInput(eye="left", gradable=True),
                    services.EyeReadInput(eye="left", gradable=True),
                ],
                next_step="normal",
            ),
            "duplicate_eye",
        ),
    ],
)
def test_bad_reads_are_refused_and_leave_nothing(site, graders, data, code):
    case = case_for(site)
    with pytest.raises(InvalidInput) as refused:
        submit(graders[0], case, data)
    assert refused.value.code == code
    assert not GraderRead.objects.exists()


def test_an_eye_without_a_photo_cannot_be_read(site, graders):
    case = case_for(site, eyes=("left",))
    with pytest.raises(InvalidInput) as refused:
        submit(graders[0], case, read("normal"))
    assert refused.value.code == "no_photo"
    submit(graders[0], case, read("normal", eyes=("left",)))


def test_per_eye_findings_and_grade_are_stored_beside_the_ai(site, graders):
    case = case_for(site, triage="referable", findings=["D"])
    data = services.ReadInput(
        eyes=[
            services.EyeReadInput(
                eye="left", gradable=True, findings=["D", "H"], dr_grade="moderate"
            ),
            services.EyeReadInput(eye="right", gradable=False),
        ],
        next_step="referable",
        note="microaneurysms",
    )
    primary = submit(graders[0], case, data)
    eyes = {e.eye: e for e in EyeRead.objects.filter(read=primary)}
    assert (eyes["left"].findings, eyes["left"].dr_grade) == (["D", "H"], "moderate")
    assert (eyes["right"].gradable, eyes["right"].findings) == (False, [])
    assert primary.findings == ["D", "H"] and primary.note == "microaneurysms"


@pytest.mark.django_db(transaction=True)
def test_two_graders_submitting_the_first_read_at_once_make_one_primary():
    from tests.factories import SiteFactory as Sites

    site = Sites()
    centre = ReadingCentreFactory(sites=[site])
    first, second = GraderFactory(centre=centre), GraderFactory(centre=centre)
    case = case_for(site, triage="referable")
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def go(grader) -> None:
        try:
            barrier.wait()
            submit(grader, case, read("normal"), stage="primary")
            outcomes[grader.username] = "ok"
        except Conflict as exc:
            outcomes[grader.username] = exc.code
        finally:
            connection.close()

    threads = [threading.Thread(target=go, args=(g,)) for g in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["ok", "stage_changed"]
    assert list(GraderRead.objects.filter(case=case).values_list("role", flat=True)) == ["primary"]
    assert CaseEvent.objects.filter(case=case, kind="second_read").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_a_second_primary_read():
    from django.db import IntegrityError, transaction

    from tests.factories import SiteFactory as Sites

    site = Sites()
    centre = ReadingCentreFactory(sites=[site])
    first, second = GraderFactory(centre=centre), GraderFactory(centre=centre)
    case = case_for(site)
    GraderRead.objects.create(
        case=case, grader=first, role="primary", next_step="normal", refer=False
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        GraderRead.objects.create(
            case=case, grader=second, role="primary", next_step="normal", refer=False
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        GraderRead.objects.create(
            case=case, grader=first, role="secondary", next_step="normal", refer=False
        )
