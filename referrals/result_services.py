"""What a referral does when the screening's result of record changes: a grader's final read
(screening.result_of_record) can take back the AI's referral or ask for one the AI did not.

* No longer referable: a referral that is still only proposed (no hospital has it) is withdrawn,
  i.e. cancelled with a note saying why. The health worker sees it on the result page and the
  worklist (the referral's status and history) and the patient, who was told a specialist visit
  was needed, is told it is not (the usual message of a cancelled referral). A referral already
  sent stays: a hospital has it and the health worker decides.
* Referable or urgent: the usual proposal starts (``referral_propose_for_screening``, which reads
  the result of record); an active routine referral becomes urgent when the final read is.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from config.errors import Conflict
from referrals.models import ACTIVE_STATUSES, Referral, ReferralEvent, ReferralStatus
from referrals.services import REFERRABLE_TRIAGE, _transition, referral_propose_for_screening
from screening.models import Triage
from screening.result_of_record import screening_of_record

logger = logging.getLogger("eyebridge.referrals")


def referral_follow_result_of_record(*, screening_id: int) -> str:
    """Bring the screening's referral in line with its result of record.

    Idempotent, so a repeated task is harmless: a withdrawn proposal is cancelled (the
    conditional UPDATE on status=proposed misses the second time), the proposal service returns
    the referral a screening has, and the urgency UPDATE only matches a routine referral.
    Returns what happened, for logs and tests."""
    screening = screening_of_record(screening_id=screening_id)
    if screening is None:
        return "missing"
    if screening.triage in REFERRABLE_TRIAGE:
        referral = referral_propose_for_screening(screening_id=screening_id)
        if referral is None:
            return "none"
        if screening.triage == Triage.URGENT and referral.status in ACTIVE_STATUSES:
            Referral.objects.filter(
                pk=referral.pk, status__in=ACTIVE_STATUSES, urgency=Referral.Urgency.ROUTINE
            ).update(urgency=Referral.Urgency.URGENT, updated_at=timezone.now())
        return "referred"
    proposed = screening.referrals.filter(status=ReferralStatus.PROPOSED).first()
    if proposed is None:
        return "nothing_to_withdraw"
    with translation.override(settings.LANGUAGE_CODE):
        note = _("Withdrawn: a grader's read found no need to refer (%(triage)s).") % {
            "triage": Triage(screening.triage).label
        }
    try:
        _transition(
            referral=proposed,
            expected=[ReferralStatus.PROPOSED],
            to=ReferralStatus.CANCELLED,
            kind=ReferralEvent.Kind.CANCELLED,
            actor=None,
            note=note,
        )
    except Conflict:
        # The health worker sent it (or cancelled it) meanwhile: theirs is the newer decision.
        logger.info("referral %s changed before it could be withdrawn", proposed.pk)
        return "changed_meanwhile"
    return "withdrawn"
