"""Pharmacy follows a changed result of record (a grader's final read): a pending prescription
the new result argues against is withdrawn once, with an audited event the health worker sees; an
approved or dispensed one is never changed, its pharmacist is alerted instead; a result changed to
medication gets the protocol's proposal; another organisation sees none of it."""

from __future__ import annotations

import pytest
from django.utils.html import escape

from accounts.models import Role
from config.celery import app
from pharmacy import services
from pharmacy.models import PharmacyAlert, Prescription, PrescriptionEvent
from pharmacy.services.result import prescription_follow_result_of_record as follow
from screening.models import Screening
from screening.result_of_record import screening_result_of_record_set
from tests.factories import HealthWorkerFactory, ScreeningFactory, SiteFactory, UserFactory
from tests.pharmacy.factories import (
    PharmacistFactory,
    PharmacyFactory,
    approved_prescription,
    link,
    protocol,
)

pytestmark = pytest.mark.django_db

TASK = "pharmacy.result_tasks.prescription_follow_result_of_record"


@pytest.fixture
def grader(db):
    return UserFactory(role=Role.GRADER, first_name="Ann", last_name="Lee")


@pytest.fixture
def site(pharmacy):
    site = SiteFactory()
    link(pharmacy, site)
    return site


@pytest.fixture
def inline_tasks(monkeypatch):
    """Tasks sent by name run here, as a worker would run them."""
    app.loader.import_default_modules()
    sent: list[str] = []

    def send_task(name: str, args=None, **kwargs):
        sent.append(name)
        task = app.tasks.get(name)
        if task is not None:
            task.apply(args=args, throw=True)

    monkeypatch.setattr(app, "send_task", send_task)
    return sent


def settle(screening: Screening, grader, triage: str, findings=()) -> Screening:
    return screening_result_of_record_set(
        screening_id=screening.pk,
        triage=triage,
        findings=list(findings),
        source="grader",
        by_user_id=grader.pk,
    )


def medication_screening(site, medication) -> tuple[Screening, Prescription]:
    """The AI said medication (dry eye): the protocol proposed a prescription, still pending."""
    protocol(medication, symptom="dryness", triage=("medication",))
    screening = ScreeningFactory(
        site=site, patient__site=site, triage="medication", symptoms=["dryness"]
    )
    proposal = services.prescription_propose_for_screening(screening_id=screening.pk)
    assert proposal is not None and proposal.status == Prescription.Status.PENDING_APPROVAL
    return screening, proposal


def test_the_task_is_registered_by_name():
    from django.conf import settings

    assert TASK in settings.SCREENING_RESULT_CHANGED_TASKS
    assert TASK in app.tasks


def test_an_upgrade_withdraws_the_pending_proposal_and_the_health_worker_sees_why(
    client, site, medication, grader, inline_tasks, django_capture_on_commit_callbacks
):
    screening, proposal = medication_screening(site, medication)
    with django_capture_on_commit_callbacks(execute=True):
        settle(screening, grader, "urgent", ["G"])
    assert TASK in inline_tasks
    proposal.refresh_from_db()
    assert proposal.status == Prescription.Status.CANCELLED
    event = proposal.events.get(to_status=Prescription.Status.CANCELLED)
    assert event.from_status == Prescription.Status.PENDING_APPROVAL
    assert event.actor is None and event.note  # the platform did it, and says why
    client.force_login(screening.health_worker)
    html = client.get(f"/screening/screenings/{screening.pk}/").content.decode()
    assert "Cancelled" in html and "Why it was cancelled" in html
    assert escape(event.note) in html


def test_the_withdrawal_happens_once(site, medication, grader):
    screening, proposal = medication_screening(site, medication)
    settle(screening, grader, "referable", ["C"])
    assert follow(screening_id=screening.pk) == "withdrawn"
    assert follow(screening_id=screening.pk) == "nothing_to_withdraw"
    assert (
        PrescriptionEvent.objects.filter(
            prescription=proposal, to_status=Prescription.Status.CANCELLED
        ).count()
        == 1
    )


def test_a_confirmed_medication_result_keeps_the_proposal(site, medication, grader):
    screening, proposal = medication_screening(site, medication)
    settle(screening, grader, "medication")
    assert follow(screening_id=screening.pk) == "proposed"
    proposal.refresh_from_db()
    assert proposal.status == Prescription.Status.PENDING_APPROVAL
    assert Prescription.objects.filter(screening=screening).count() == 1


def test_an_approved_prescription_is_left_alone_and_its_pharmacist_alerted(
    client, site, pharmacist, medication, grader
):
    prescription, _code = approved_prescription(
        pharmacist, medication, site=site, patient__site=site, triage="medication"
    )
    screening = prescription.screening
    settle(screening, grader, "urgent", ["G"])
    assert follow(screening_id=screening.pk) == "flagged"
    prescription.refresh_from_db()
    assert prescription.status == Prescription.Status.APPROVED
    assert prescription.dispense_code.revoked_at is None  # the patient's code still works
    review = prescription.events.filter(from_status="approved", to_status="approved")
    assert review.count() == 1 and review.get().actor is None
    alert = PharmacyAlert.objects.get(kind=PharmacyAlert.Kind.RESULT_CHANGED)
    assert alert.pharmacy == pharmacist.pharmacist_membership.pharmacy
    assert alert.object_ref == f"prescription:{prescription.pk}"
    assert screening.patient.pseudonym in alert.message

    # Redelivered, and again after the pharmacist resolved the alert: nothing new.
    assert follow(screening_id=screening.pk) == "nothing_to_withdraw"
    services.pharmacy_alert_resolve(user=pharmacist, alert_id=alert.pk)
    assert follow(screening_id=screening.pk) == "nothing_to_withdraw"
    assert review.count() == 1
    assert PharmacyAlert.objects.filter(kind=PharmacyAlert.Kind.RESULT_CHANGED).count() == 1

    # The pharmacist decides: cancelling is theirs, through the usual service.
    services.prescription_cancel(user=pharmacist, prescription_id=prescription.pk, reason="refer")
    prescription.refresh_from_db()
    assert prescription.status == Prescription.Status.CANCELLED


def test_a_dispensed_prescription_is_never_touched(site, pharmacist, medication, grader):
    prescription, _code = approved_prescription(
        pharmacist, medication, site=site, patient__site=site, triage="medication"
    )
    Prescription.objects.filter(pk=prescription.pk).update(status=Prescription.Status.DISPENSED)
    settle(prescription.screening, grader, "referable", ["C"])
    assert follow(screening_id=prescription.screening_id) == "flagged"
    prescription.refresh_from_db()
    assert prescription.status == Prescription.Status.DISPENSED
    assert PharmacyAlert.objects.filter(object_ref=f"prescription:{prescription.pk}").count() == 1


def test_another_pharmacy_sees_no_alert_and_another_site_no_prescription(
    client, site, pharmacist, medication, grader
):
    prescription, _code = approved_prescription(
        pharmacist, medication, site=site, patient__site=site, triage="medication"
    )
    settle(prescription.screening, grader, "urgent", ["G"])
    follow(screening_id=prescription.screening_id)
    alert = PharmacyAlert.objects.get(kind=PharmacyAlert.Kind.RESULT_CHANGED)

    client.force_login(pharmacist)
    assert escape(alert.message) in client.get("/pharmacy/stock/").content.decode()
    other = PharmacistFactory(pharmacy=PharmacyFactory())
    client.force_login(other)
    assert escape(alert.message) not in client.get("/pharmacy/stock/").content.decode()
    assert client.get(f"/pharmacy/prescriptions/{prescription.pk}/").status_code == 404

    outsider = HealthWorkerFactory(site=SiteFactory())
    client.force_login(outsider)
    assert client.get(f"/screening/screenings/{prescription.screening_id}/").status_code == 404


def test_a_prescription_requested_after_the_change_is_not_withdrawn(site, medication, grader):
    screening = ScreeningFactory(site=site, patient__site=site, triage="medication")
    settle(screening, grader, "referable", ["C"])
    # The health worker asks for medication knowing the new result: their decision stands.
    worker = screening.health_worker
    later = services.prescription_request(
        user=worker, screening_id=screening.pk, medication_id=medication.pk, quantity=1
    )
    assert later.created_at > Screening.objects.get(pk=screening.pk).final_at
    assert follow(screening_id=screening.pk) == "nothing_to_withdraw"
    later.refresh_from_db()
    assert later.status == Prescription.Status.PENDING_APPROVAL


def test_a_result_changed_to_medication_gets_the_protocols_proposal(
    site, medication, grader, inline_tasks, django_capture_on_commit_callbacks
):
    protocol(medication, symptom="dryness", triage=("medication",))
    screening = ScreeningFactory(
        site=site, patient__site=site, triage="referable", findings=["C"], symptoms=["dryness"]
    )
    # The AI's referable result got no proposal.
    assert services.prescription_propose_for_screening(screening_id=screening.pk) is None
    with django_capture_on_commit_callbacks(execute=True):
        settle(screening, grader, "medication")
    proposal = Prescription.objects.get(screening=screening)
    assert proposal.source == Prescription.Source.RULE
    assert proposal.status == Prescription.Status.PENDING_APPROVAL
    assert [i.medication_id for i in proposal.items.all()] == [medication.pk]
    # Once: a redelivery returns the same proposal.
    assert follow(screening_id=screening.pk) == "proposed"
    assert Prescription.objects.filter(screening=screening).count() == 1


def test_a_screening_the_ai_found_ungradable_gets_a_proposal_when_a_grader_says_medication(
    site, medication, grader
):
    protocol(medication, symptom="dryness", triage=("medication",))
    screening = ScreeningFactory(
        site=site,
        patient__site=site,
        status=Screening.Status.UNGRADABLE,
        triage="ungradable",
        symptoms=["dryness"],
    )
    assert services.prescription_propose_for_screening(screening_id=screening.pk) is None
    settle(screening, grader, "medication")
    assert follow(screening_id=screening.pk) == "proposed"
    assert Prescription.objects.filter(screening=screening).count() == 1


def test_an_ai_result_with_no_final_read_changes_nothing(site, medication):
    screening, proposal = medication_screening(site, medication)
    assert follow(screening_id=screening.pk) == "ai_result"
    assert follow(screening_id=10**9) == "missing"
    proposal.refresh_from_db()
    assert proposal.status == Prescription.Status.PENDING_APPROVAL
    assert not proposal.events.exclude(to_status=Prescription.Status.PENDING_APPROVAL).exists()
