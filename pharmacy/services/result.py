"""What pharmacy does when a screening's result of record changes: a grader's final read
(screening.result_of_record) can send to an eye doctor a patient the AI had sent to the pharmacy,
or the other way round.

* The result of record is now referable, urgent or ungradable (never treated with OTC medicine,
  the rule of ``PROPOSABLE_TRIAGE``):
  - a prescription still **waiting for the pharmacist** is withdrawn: cancelled, with an event in
    its history that says why (no actor: the platform did it). The health worker sees it on the
    result page (the medication panel: "Cancelled" and the reason). The patient was never texted
    about a pending prescription (the code goes out on approval), so no message is owed; the
    referral that referrals starts for the same change is what reaches the patient.
  - an **approved** prescription (the patient holds a pickup code) or a **dispensed** one is never
    changed by this task: whether to stop an approved medicine is the pharmacist's decision. It
    gets an event in its history and an alert to its pharmacy (the stock page's alerts and the
    badge in the pharmacist's menu), so nobody finds out by chance; the pharmacist can cancel it
    (``prescription_cancel``), which also revokes the code.
  Only the prescriptions created before the result changed are looked at: one a health worker
  asks for afterwards is a decision taken knowing the new result.
* The result of record is now normal or medication: the protocol proposal runs as for a newly
  finished screening (``prescription_propose_for_screening``, which reads the result of record).
  It stays one rule proposal per screening: a screening that already had one (even a withdrawn
  one) gets no second.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import translation
from django.utils.translation import gettext as _

from pharmacy.models import PharmacyAlert, Prescription, PrescriptionEvent
from pharmacy.services._common import _event
from pharmacy.services.prescriptions import PROPOSABLE_TRIAGE, prescription_propose_for_screening
from screening.models import Screening, Triage
from screening.result_of_record import screening_of_record

logger = logging.getLogger("eyebridge.pharmacy")

# Decided already: the pharmacist is told, the prescription is left as it is.
DECIDED = (Prescription.Status.APPROVED, Prescription.Status.DISPENSED)


def prescription_follow_result_of_record(*, screening_id: int) -> str:
    """Bring the screening's prescriptions in line with its result of record.

    Idempotent, so a repeated task is harmless: a withdrawn prescription is no longer pending
    (checked under its row lock), the review event of an approved one is written once per result
    (looked for under the same lock) and its alert once while open (the unique open alert), and the
    proposal returns the screening's existing rule proposal. Returns what happened, for logs and
    tests: "missing", "ai_result", "proposed", "none", "withdrawn", "flagged" or
    "nothing_to_withdraw"."""
    screening = screening_of_record(screening_id=screening_id)
    if screening is None:
        return "missing"
    if not screening.final_source or screening.final_at is None:
        # Nobody settled a result: the AI's stands and SCREENING_COMPLETED_TASKS handled it.
        return "ai_result"
    if screening.triage in PROPOSABLE_TRIAGE:
        proposed = prescription_propose_for_screening(screening_id=screening_id)
        return "proposed" if proposed is not None else "none"
    return _withdraw_or_flag(screening)


def _notes(screening: Screening) -> dict[str, str]:
    # Stored in the platform's language, as referrals stores its withdrawal note: the history is
    # one text for every reader.
    values = {"triage": Triage(screening.triage).label}
    with translation.override(settings.LANGUAGE_CODE):
        return {
            "withdrawn": _(
                "Withdrawn: a grader's read found that the patient needs an eye doctor "
                "(%(triage)s), not medication."
            )
            % values,
            Prescription.Status.APPROVED: _(
                "A grader's read changed the result to %(triage)s after approval: for the "
                "pharmacist to review."
            )
            % values,
            Prescription.Status.DISPENSED: _(
                "A grader's read changed the result to %(triage)s after the medicine was dispensed."
            )
            % values,
        }


def _alert_message(prescription: Prescription, screening: Screening) -> str:
    values = {
        "id": prescription.pk,
        "patient": screening.patient.pseudonym,
        "triage": Triage(screening.triage).label,
    }
    with translation.override(settings.LANGUAGE_CODE):
        if prescription.status == Prescription.Status.APPROVED:
            return (
                _(
                    "Prescription %(id)s (patient %(patient)s) is approved, but a grader's read "
                    "now says %(triage)s: the patient should see an eye doctor. Review it and "
                    "cancel it if the medicine should not be given; its pickup code works until "
                    "then."
                )
                % values
            )
        return (
            _(
                "Prescription %(id)s (patient %(patient)s) was dispensed, but a grader's read now "
                "says %(triage)s: the patient is being referred to an eye doctor."
            )
            % values
        )


def _withdraw_or_flag(screening: Screening) -> str:
    notes = _notes(screening)
    ids = list(
        Prescription.objects.filter(
            screening_id=screening.pk,
            status__in=[Prescription.Status.PENDING_APPROVAL, *DECIDED],
            created_at__lte=screening.final_at,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    withdrawn = flagged = 0
    for prescription_id in ids:  # primary-key order, one at a time: the locking rule
        with transaction.atomic():
            # The lock orders this after a pharmacist's approval in flight (which holds the same
            # row): the status read below is the one that stands.
            prescription = Prescription.objects.select_for_update().get(pk=prescription_id)
            if prescription.status == Prescription.Status.PENDING_APPROVAL:
                prescription.status = Prescription.Status.CANCELLED
                prescription.save(update_fields=["status", "updated_at"])
                _event(
                    prescription,
                    from_status=Prescription.Status.PENDING_APPROVAL,
                    note=notes["withdrawn"],
                )
                withdrawn += 1
            elif prescription.status in DECIDED:
                flagged += _flag(prescription, screening, note=notes[prescription.status])
    if withdrawn:
        return "withdrawn"
    return "flagged" if flagged else "nothing_to_withdraw"


def _flag(prescription: Prescription, screening: Screening, *, note: str) -> int:
    """Tell the pharmacist about a decided prescription the new result argues against; change
    nothing else. Call while holding the prescription's row lock: the lock makes "is the event
    there already?" and the insert one step for two deliveries of the task."""
    already = PrescriptionEvent.objects.filter(
        prescription=prescription, note=note, created_at__gte=screening.final_at
    ).exists()
    if already:
        return 0
    _event(prescription, from_status=prescription.status, note=note)
    try:
        with transaction.atomic():
            PharmacyAlert.objects.create(
                pharmacy_id=prescription.pharmacy_id,
                kind=PharmacyAlert.Kind.RESULT_CHANGED,
                object_ref=f"prescription:{prescription.pk}",
                message=_alert_message(prescription, screening),
            )
    except IntegrityError:
        pass  # one open alert per prescription is enough; its event above records this change
    logger.info(
        "prescription %s is %s; screening %s is now %s: pharmacist alerted",
        prescription.pk,
        prescription.status,
        screening.pk,
        screening.triage,
    )
    return 1
