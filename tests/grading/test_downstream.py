"""What a final read changes downstream: a grader who downgrades withdraws an unsent referral
proposal and tells the health worker (and the patient); one who upgrades starts the referral."""

from __future__ import annotations

import pytest

from accounts.models import OutboundMessage
from grading import services
from referrals.models import Referral, ReferralEvent, ReferralStatus
from referrals.result_services import referral_follow_result_of_record
from referrals.services import referral_propose_for_screening
from screening.models import Screening
from screening.result_of_record import (
    result_of_record,
    screening_of_record,
    screening_result_of_record_set,
)
from tests.grading.factories import case_for
from tests.referrals.factories import HospitalFactory, specialty

pytestmark = pytest.mark.django_db


def read(next_step: str, *, findings=(), dr_grade: str = ""):
    return services.ReadInput(
        eyes=[
            services.EyeReadInput(eye=eye, gradable=True, findings=findings, dr_grade=dr_grade)
            for eye in ("left", "right")
        ],
        next_step=next_step,
    )


def settle(graders, case, data_first, data_second=None):
    """The first read disagrees with the AI; the second agrees with the first: final."""
    services.grader_read_submit(user=graders[0], screening_id=case.screening_id, data=data_first)
    if data_second is not None:
        services.grader_read_submit(
            user=graders[1], screening_id=case.screening_id, data=data_second
        )


@pytest.fixture
def hospitals():
    return [
        HospitalFactory(specialties=["general", "retina"]),
        HospitalFactory(specialties=["general", "glaucoma"]),
    ]


def test_a_downgrade_withdraws_the_unsent_proposal_and_tells_the_health_worker(
    site, graders, hospitals, inline_tasks, django_capture_on_commit_callbacks
):
    case = case_for(site, triage="referable", findings=["D"])
    proposal = referral_propose_for_screening(screening_id=case.screening_id)
    assert proposal.status == ReferralStatus.PROPOSED
    with django_capture_on_commit_callbacks(execute=True):
        settle(graders, case, read("normal", findings=["N"]), read("normal"))
    assert ("referrals.result_tasks.referral_follow_result_of_record", [case.screening_id]) in (
        inline_tasks
    )
    proposal.refresh_from_db()
    assert proposal.status == ReferralStatus.CANCELLED
    event = proposal.events.get(kind=ReferralEvent.Kind.CANCELLED)
    # The referral's history (the health worker's result page and worklist show it) says why.
    assert event.actor is None and event.note
    # The patient, told a specialist visit was needed, is told it is not.
    assert OutboundMessage.objects.filter(
        to=case.screening.patient.phone, dedupe_key=f"referral-event:{event.pk}"
    ).exists()


def test_a_referral_already_sent_is_left_to_the_health_worker(
    site, graders, hospitals, inline_tasks, django_capture_on_commit_callbacks
):
    case = case_for(site, triage="referable", findings=["D"])
    proposal = referral_propose_for_screening(screening_id=case.screening_id)
    Referral.objects.filter(pk=proposal.pk).update(
        status=ReferralStatus.SENT, hospital=hospitals[0]
    )
    with django_capture_on_commit_callbacks(execute=True):
        settle(graders, case, read("normal"), read("normal"))
    proposal.refresh_from_db()
    assert proposal.status == ReferralStatus.SENT
    assert referral_follow_result_of_record(screening_id=case.screening_id) == "nothing_to_withdraw"


def test_an_upgrade_starts_the_referral_with_the_final_urgency_and_findings(
    site, graders, hospitals, inline_tasks, django_capture_on_commit_callbacks
):
    specialty("glaucoma")
    case = case_for(site, triage="normal", findings=[])
    assert referral_propose_for_screening(screening_id=case.screening_id) is None
    with django_capture_on_commit_callbacks(execute=True):
        settle(graders, case, read("urgent", findings=["G"]), read("urgent", findings=["G"]))
    referral = Referral.objects.get(screening_id=case.screening_id)
    assert referral.status == ReferralStatus.PROPOSED
    assert referral.urgency == Referral.Urgency.URGENT
    assert "glaucoma" in referral.required_specialties
    # The AI's own result is unchanged.
    screening = Screening.objects.get(pk=case.screening_id)
    assert (screening.triage, screening.findings) == ("normal", [])


def test_an_upgrade_to_urgent_makes_an_existing_routine_referral_urgent(
    site, graders, hospitals, inline_tasks, django_capture_on_commit_callbacks
):
    case = case_for(site, triage="referable", findings=["D"])
    proposal = referral_propose_for_screening(screening_id=case.screening_id)
    assert proposal.urgency == Referral.Urgency.ROUTINE
    with django_capture_on_commit_callbacks(execute=True):
        services.grader_read_submit(
            user=graders[0],
            screening_id=case.screening_id,
            data=read("urgent", findings=["D"], dr_grade="pdr"),
        )
    proposal.refresh_from_db()
    assert (proposal.status, proposal.urgency) == ("proposed", "urgent")
    assert Referral.objects.filter(screening_id=case.screening_id).count() == 1


def test_following_the_result_twice_changes_nothing_the_second_time(site, graders, hospitals):
    case = case_for(site, triage="referable", findings=["D"])
    referral_propose_for_screening(screening_id=case.screening_id)
    screening_result_of_record_set(
        screening_id=case.screening_id,
        triage="normal",
        findings=[],
        source="grader",
        by_user_id=graders[0].pk,
    )
    assert referral_follow_result_of_record(screening_id=case.screening_id) == "withdrawn"
    assert referral_follow_result_of_record(screening_id=case.screening_id) == "nothing_to_withdraw"
    assert ReferralEvent.objects.filter(kind=ReferralEvent.Kind.CANCELLED).count() == 1


def test_the_proposal_reads_the_result_of_record_and_never_writes_it(site, graders):
    case = case_for(site, triage="normal", findings=[])
    screening_result_of_record_set(
        screening_id=case.screening_id,
        triage="referable",
        findings=["C"],
        source="grader",
        by_user_id=graders[0].pk,
    )
    view = screening_of_record(screening_id=case.screening_id)
    assert (view.triage, view.findings) == ("referable", ["C"])
    with pytest.raises(TypeError):
        view.save()
    stored = Screening.objects.get(pk=case.screening_id)
    assert (stored.triage, stored.final_triage) == ("normal", "referable")
    record = result_of_record(stored)
    assert (record.triage, record.source, record.by_id) == ("referable", "grader", graders[0].pk)


def test_the_result_changed_tasks_are_sent_by_name_after_commit(
    site, graders, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from config.celery import app

    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, **kw: sent.append((name, args)))
    settings.SCREENING_RESULT_CHANGED_TASKS = ["one.task", "two.task"]
    case = case_for(site)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        screening_result_of_record_set(
            screening_id=case.screening_id,
            triage="normal",
            findings=[],
            source="grader",
            by_user_id=graders[0].pk,
        )
    assert sent == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert sent == [("one.task", [case.screening_id]), ("two.task", [case.screening_id])]


def test_a_broker_outage_runs_the_downstream_task_in_process(
    site, graders, hospitals, monkeypatch, django_capture_on_commit_callbacks
):
    from config.celery import app

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(app, "send_task", down)
    case = case_for(site, triage="normal", findings=[])
    with django_capture_on_commit_callbacks(execute=True):
        screening_result_of_record_set(
            screening_id=case.screening_id,
            triage="referable",
            findings=["D"],
            source="grader",
            by_user_id=graders[0].pk,
        )
    assert Referral.objects.filter(screening_id=case.screening_id).exists()


def test_an_unfinished_screening_cannot_get_a_result_of_record(site, graders):
    from config.errors import Conflict
    from tests.factories import ScreeningFactory

    queued = ScreeningFactory(site=site, patient__site=site, status="queued", triage="")
    with pytest.raises(Conflict):
        screening_result_of_record_set(
            screening_id=queued.pk,
            triage="normal",
            findings=[],
            source="grader",
            by_user_id=graders[0].pk,
        )
