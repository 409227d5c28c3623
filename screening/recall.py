"""Recall: when each patient is due to be screened again, the health worker's list of who is due,
and the SMS reminder a few days before.

The protocol (docs/decisions.md, "Recall"), from the result of record of the patient's latest
finished screening:

==============  ==========  ===============================================================
result          next due    why
==============  ==========  ===============================================================
normal          12 months   the programme's yearly rescreen
medication      6 months    the retina was clear, but the eyes had symptoms an OTC product
                            was given for: an earlier look catches what was not a surface
                            problem after all
ungradable      1 month     no photo could be read: screen again soon (after the in-person
                            examination it is referred for, whichever comes first)
referable       3 months    only reached when no referral holds the patient (the health
                            worker cancelled it): they must not drop off the list
urgent          1 month     idem, sooner
==============  ==========  ===============================================================

While a referral is open (proposed, sent, accepted, declined, attended) the patient has no due
date: the hospital has them. A missed appointment brings them back to the list at once, for the
health worker to call; a completed referral restarts the yearly clock from its completion.
Screening knows referrals only through ``screening.extensions.register_recall_check``; referrals
calls :func:`patient_recall_refresh` whenever one of its referrals changes.

Every refresh recomputes the row from the current state under the patient's row lock, so the
triggers (a screening finished, a final read, any referral event) may arrive in any order and any
number of times: the last one leaves the right answer.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.models import User
from screening import extensions, selectors
from screening.extensions import RecallState
from screening.models import Patient, Recall, RecallReason, Screening, Triage

logger = logging.getLogger("eyebridge.screening")

INTERVAL_MONTHS: dict[str, int] = {
    Triage.NORMAL: 12,
    Triage.MEDICATION: 6,
    Triage.UNGRADABLE: 1,
    Triage.REFERABLE: 3,
    Triage.URGENT: 1,
}
REASON_BY_TRIAGE: dict[str, str] = {
    Triage.NORMAL: RecallReason.ROUTINE,
    Triage.MEDICATION: RecallReason.MEDICATION,
    Triage.UNGRADABLE: RecallReason.RETAKE,
    Triage.REFERABLE: RecallReason.NOT_REFERRED,
    Triage.URGENT: RecallReason.NOT_REFERRED,
}
AFTER_REFERRAL_MONTHS = 12
FINISHED = (Screening.Status.COMPLETED, Screening.Status.UNGRADABLE)
# Reasons that get no SMS: the patient is on hold, or the health worker calls them (a missed
# appointment was already texted by referrals).
NO_REMINDER = (RecallReason.REFERRAL_OPEN, RecallReason.MISSED_APPOINTMENT)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later; the month's last day where it is shorter (31 Jan + 1 ->
    28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _local_day(moment: dt.datetime) -> dt.date:
    return timezone.localdate(moment)


@dataclass(frozen=True)
class RecallPlan:
    due_on: dt.date | None
    reason: str
    screening_id: int | None


def recall_plan(*, screening: Screening | None, states: list[RecallState]) -> RecallPlan | None:
    """The recall a patient should have, from their latest finished screening (None: never
    screened, no recall) and what the downstream apps know. Pure: no queries."""
    if screening is None:
        return None
    if any(s.hold for s in states):
        return RecallPlan(None, RecallReason.REFERRAL_OPEN, screening.pk)
    missed = [s.missed_at for s in states if s.missed_at is not None]
    if missed:
        return RecallPlan(_local_day(max(missed)), RecallReason.MISSED_APPOINTMENT, screening.pk)
    finished_at = screening.completed_at or screening.created_at
    done = [s.done_at for s in states if s.done_at is not None and s.done_at > finished_at]
    if done:
        due = add_months(_local_day(max(done)), AFTER_REFERRAL_MONTHS)
        return RecallPlan(due, RecallReason.AFTER_REFERRAL, screening.pk)
    triage = screening.triage_of_record or Triage.UNGRADABLE
    months = INTERVAL_MONTHS.get(triage, INTERVAL_MONTHS[Triage.UNGRADABLE])
    reason = REASON_BY_TRIAGE.get(triage, RecallReason.RETAKE)
    return RecallPlan(add_months(_local_day(finished_at), months), reason, screening.pk)


def latest_finished_screening(*, patient_id: int) -> Screening | None:
    return (
        Screening.objects.filter(patient_id=patient_id, status__in=FINISHED)
        .order_by(F("completed_at").desc(nulls_last=True), "-created_at", "-id")
        .first()
    )


def patient_recall_refresh(*, patient_id: int) -> Recall | None:
    """Recompute the patient's recall from their latest finished screening and the registered
    recall checks (an open referral holds it). Returns the row, or None if never screened.

    Locks the patient's row (SELECT FOR UPDATE) for the read and the write: two refreshes of the
    same patient (a referral event beside a final read) run one after the other, and the second
    reads what the first committed. Callable inside the caller's transaction (referrals calls it
    inside a transition, so the row and the referral commit together). Idempotent."""
    with transaction.atomic():
        locked = Patient.objects.select_for_update().filter(pk=patient_id).values_list("pk")
        if not list(locked):
            return None
        latest = latest_finished_screening(patient_id=patient_id)
        plan = recall_plan(screening=latest, states=extensions.recall_states(patient_id=patient_id))
        if plan is None:
            Recall.objects.filter(patient_id=patient_id).delete()
            return None
        recall, _created = Recall.objects.update_or_create(
            patient_id=patient_id,
            defaults={
                "due_on": plan.due_on,
                "reason": plan.reason,
                "screening_id": plan.screening_id,
            },
        )
    return recall


def patient_recall_refresh_for_screening(*, screening_id: int) -> Recall | None:
    patient_id = (
        Screening.objects.filter(pk=screening_id).values_list("patient_id", flat=True).first()
    )
    return None if patient_id is None else patient_recall_refresh(patient_id=patient_id)


def contact_withdrawn_q(prefix: str = "") -> Q:
    """Patients who may not be contacted: consent not (or no longer) given, or the record erased
    (screening.consent): never texted, never on the call list."""
    return (
        Q(**{f"{prefix}consent_given": False})
        | Q(**{f"{prefix}consent_withdrawn_at__isnull": False})
        | Q(**{f"{prefix}erased_at__isnull": False})
    )


def due_horizon(today: dt.date) -> dt.date:
    return today + dt.timedelta(days=settings.RECALL_REMINDER_DAYS_BEFORE)


def recalls_due(*, user: User, today: dt.date | None = None) -> QuerySet[Recall]:
    """The health worker's "due and overdue" list: their site's patients due within the reminder
    window (the days in which the patient gets the SMS) or already overdue, missed hospital
    appointments included; patients who withdrew consent are left out. Scoped like every read:
    another site's patients are simply not there."""
    today = today or timezone.localdate()
    return (
        Recall.objects.filter(
            patient__in=selectors.patients_for_user(user=user), due_on__lte=due_horizon(today)
        )
        .exclude(contact_withdrawn_q("patient__"))
        .select_related("patient", "screening")
        .order_by("due_on", "patient__name", "patient_id")
    )


def patient_recall(*, patient: Patient) -> Recall | None:
    """The patient's recall row (the caller already holds a patient it may see)."""
    return Recall.objects.filter(patient=patient).first()


def _reminder_text(recall: Recall, due_on: dt.date) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return _(
            "EyeBridge: your eye screening is due on %(date)s. Please visit %(site)s or call "
            "your health worker."
        ) % {
            "date": date_format(due_on, "DATE_FORMAT"),
            "site": recall.patient.site.name,
        }


def recall_reminders_send(*, today: dt.date | None = None) -> int:
    """Text each patient whose due date is within ``RECALL_REMINDER_DAYS_BEFORE`` days, once per
    due date. Returns how many messages this run sent.

    Once is enforced by the database: the message's dedupe key ``recall:<patient>:<due date>`` is
    unique in OutboundMessage, so a second run, or two runs at once, insert it once and send once
    (accounts.messaging.message_send). ``reminder_sent_for`` then records it on the recall with a
    conditional UPDATE that matches only while the due date is still the one texted about."""
    from accounts.messaging import message_send

    today = today or timezone.localdate()
    candidates = (
        Recall.objects.filter(due_on__gte=today, due_on__lte=due_horizon(today))
        .exclude(reason__in=NO_REMINDER)
        .exclude(reminder_sent_for=F("due_on"))
        .exclude(patient__phone="")
        .exclude(contact_withdrawn_q("patient__"))
        .select_related("patient__site")
        .order_by("due_on", "pk")
    )
    sent = 0
    # A list, not a cursor held open while each message is written and delivered.
    for recall in list(candidates):
        due_on = recall.due_on
        assert due_on is not None  # filtered on due_on
        message = message_send(
            to=recall.patient.phone,
            body=_reminder_text(recall, due_on),
            topic="recall",
            dedupe_key=f"recall:{recall.patient_id}:{due_on.isoformat()}",
        )
        Recall.objects.filter(pk=recall.pk, due_on=due_on).update(
            reminder_sent_for=due_on, reminder_sent_at=timezone.now()
        )
        sent += message is not None
    if sent:
        logger.info("sent %s recall reminders", sent)
    return sent


def recalls_refresh_all() -> int:
    """Recompute every screened patient's recall (after deploying, or when the protocol
    changes): ``manage.py recall_refresh``. Idempotent."""
    ids = (
        Screening.objects.filter(status__in=FINISHED)
        .order_by("patient_id")
        .values_list("patient_id", flat=True)
        .distinct()
    )
    count = 0
    for patient_id in ids.iterator(chunk_size=500):
        patient_recall_refresh(patient_id=patient_id)
        count += 1
    return count
