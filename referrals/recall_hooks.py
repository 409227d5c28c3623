"""Referrals' part in a patient's recall (screening.recall).

Screening cannot see referrals, so referrals tells it two things:

* what a patient's referrals mean for their recall (``recall_state``, registered with
  ``screening.extensions.register_recall_check`` from ``ReferralsConfig.ready``): an open referral
  holds the recall (no due date), a missed appointment brings the patient back to the health
  worker's list at once, a completed referral restarts the yearly clock;
* that it changed: every referral event calls ``screening.recall.patient_recall_refresh``
  (``referral_changed``, from ``referrals.services._record``), inside the transition's
  transaction, so the recall and the referral commit together.
"""

from __future__ import annotations

from django.db.models import Max, Q

from referrals.models import Referral, ReferralEvent, ReferralStatus
from screening import extensions
from screening.extensions import RecallState
from screening.recall import patient_recall_refresh_for_screening

# A referral in one of these states has the patient in a hospital's hands (or on its way there):
# no rescreen date meanwhile. A no-show is active too, but it is the health worker's to follow up.
HOLDING = (
    ReferralStatus.PROPOSED,
    ReferralStatus.SENT,
    ReferralStatus.ACCEPTED,
    ReferralStatus.DECLINED,
    ReferralStatus.ATTENDED,
)


def recall_state(*, patient_id: int) -> RecallState:
    """One query over the patient's referrals."""
    found = Referral.objects.filter(screening__patient_id=patient_id).aggregate(
        hold=Max("pk", filter=Q(status__in=HOLDING)),
        done_at=Max("completed_at", filter=Q(status=ReferralStatus.COMPLETED)),
        missed_at=Max(
            "events__created_at",
            filter=Q(status=ReferralStatus.NO_SHOW, events__kind=ReferralEvent.Kind.NO_SHOW),
        ),
    )
    return RecallState(
        hold=found["hold"] is not None, missed_at=found["missed_at"], done_at=found["done_at"]
    )


def referral_changed(*, referral: Referral) -> None:
    """Recompute the recall of the referral's patient (call inside the transition)."""
    patient_recall_refresh_for_screening(screening_id=referral.screening_id)


def register() -> None:
    extensions.register_recall_check(key="referrals", check=recall_state)
