"""The Celery tasks are safe to deliver twice (run in-process with .apply: the logic, not the broker)."""

from __future__ import annotations

import pytest

from accounts.models import OutboundMessage
from pharmacy.models import Prescription
from pharmacy.tasks import prescription_propose_for_screening, prescription_send_code
from tests.factories import ScreeningFactory
from tests.pharmacy.factories import approved_prescription, link, protocol

pytestmark = pytest.mark.django_db


def test_redelivered_proposal_task_creates_one_prescription(pharmacy, medication):
    protocol(medication, symptom="dryness")
    screening = ScreeningFactory(triage="medication", symptoms=["dryness"])
    link(pharmacy, screening.site)
    prescription_propose_for_screening.apply(args=[screening.pk])
    prescription_propose_for_screening.apply(args=[screening.pk])
    assert Prescription.objects.filter(screening=screening).count() == 1


def test_redelivered_code_message_is_sent_once(pharmacist, medication):
    prescription, code = approved_prescription(pharmacist, medication)
    prescription_send_code.apply(args=[prescription.pk])
    prescription_send_code.apply(args=[prescription.pk])
    message = OutboundMessage.objects.get()
    assert f"{code[:4]}-{code[4:]}" in message.body


def test_no_code_message_for_a_cancelled_prescription(pharmacist, medication):
    from pharmacy.services import prescription_cancel

    prescription, _ = approved_prescription(pharmacist, medication)
    prescription_cancel(user=pharmacist, prescription_id=prescription.pk, reason="duplicate")
    prescription_send_code.apply(args=[prescription.pk])
    assert not OutboundMessage.objects.exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_proposes_once_and_texts_the_code_once(
    celery_worker_process, pharmacy, medication
):
    """Through Redis and a real worker process: a duplicated "screening completed" message makes
    one proposal; approval (after commit) makes the worker text the patient exactly once."""
    import time

    from tests.pharmacy.factories import COUNSELLING, PharmacistFactory

    protocol(medication, symptom="itching")
    screening = ScreeningFactory(triage="normal", symptoms=["itching"])
    link(pharmacy, screening.site)
    prescription_propose_for_screening.delay(screening.pk)
    prescription_propose_for_screening.delay(screening.pk)  # a redelivery

    def wait_for(predicate, what: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(
            f"timed out waiting for {what}\n{celery_worker_process.log_text()[-3000:]}"
        )

    wait_for(lambda: Prescription.objects.filter(screening=screening).exists(), "the proposal")
    pharmacist = PharmacistFactory(pharmacy=pharmacy)
    from pharmacy.services import prescription_approve

    prescription = Prescription.objects.get(screening=screening)
    prescription_approve(user=pharmacist, prescription_id=prescription.pk, counselling=COUNSELLING)
    prescription_send_code.delay(prescription.pk)  # a duplicate of the on_commit message
    wait_for(
        lambda: OutboundMessage.objects.filter(topic="dispense_code").exists(), "the text message"
    )
    time.sleep(2)  # give the duplicates time to (not) do anything
    assert Prescription.objects.filter(screening=screening).count() == 1
    assert OutboundMessage.objects.filter(topic="dispense_code").count() == 1


def test_old_idempotency_records_are_purged(kiosk, time_machine):
    import datetime as dt

    from django.utils import timezone

    from pharmacy.models import IdempotencyRecord
    from pharmacy.tasks import prescriptions_expire

    IdempotencyRecord.objects.create(kiosk=kiosk, key="old", method_path="POST x", request_hash="h")
    prescriptions_expire.apply()
    assert IdempotencyRecord.objects.count() == 1
    time_machine.move_to(timezone.now() + dt.timedelta(days=8))
    IdempotencyRecord.objects.create(kiosk=kiosk, key="new", method_path="POST x", request_hash="h")
    prescriptions_expire.apply()
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
