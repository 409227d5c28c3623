"""Escalation: a sent referral that its hospital leaves unanswered past the deadline (48 h, 4 h
when urgent) goes to the next ranked candidate; with none left, an administrator is alerted.
Run by the beat (referrals.tasks); re-exported from referrals.services."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import AdminAlert
from referrals.models import Hospital, Referral, ReferralEvent, ReferralStatus
from referrals.services import _record, escalate_after_hours


def referrals_overdue(*, now: dt.datetime) -> list[int]:
    routine_cut = now - dt.timedelta(hours=escalate_after_hours(Referral.Urgency.ROUTINE))
    urgent_cut = now - dt.timedelta(hours=escalate_after_hours(Referral.Urgency.URGENT))
    return list(
        Referral.objects.filter(status=ReferralStatus.SENT, escalation_exhausted=False)
        .filter(
            Q(urgency=Referral.Urgency.URGENT, sent_at__lte=urgent_cut)
            | Q(urgency=Referral.Urgency.ROUTINE, sent_at__lte=routine_cut)
        )
        .order_by("sent_at")
        .values_list("pk", flat=True)[:500]
    )


def referral_escalate(*, referral_id: int, now: dt.datetime | None = None) -> str:
    """Re-route one unanswered ``sent`` referral to the next untried candidate.

    Holds SELECT FOR UPDATE on the referral while it decides: an accept that arrives meanwhile
    waits, then its conditional UPDATE (status=sent AND hospital=theirs) misses and gets a 409, so
    a hospital can never accept a referral that has just been moved away from it. Idempotent: the
    overdue check is repeated under the lock, and sent_at restarts the clock after re-routing.
    Returns "escalated", "exhausted" or "skipped"."""
    now = now or timezone.now()
    with transaction.atomic():
        referral = Referral.objects.select_for_update().filter(pk=referral_id).first()
        if (
            referral is None
            or referral.status != ReferralStatus.SENT
            or referral.escalation_exhausted
        ):
            return "skipped"
        hours = escalate_after_hours(referral.urgency)
        if referral.sent_at is None or referral.sent_at > now - dt.timedelta(hours=hours):
            return "skipped"
        tried = set(
            referral.events.filter(hospital__isnull=False).values_list("hospital_id", flat=True)
        ) | {referral.hospital_id}
        untried = [
            c["hospital_id"] for c in referral.candidates if c.get("hospital_id") not in tried
        ]
        open_ids = set(
            Hospital.objects.filter(pk__in=untried, accepts_referrals=True).values_list(
                "pk", flat=True
            )
        )
        next_id = next((pk for pk in untried if pk in open_ids), None)
        previous = referral.hospital
        if next_id is None:
            Referral.objects.filter(pk=referral.pk).update(
                escalation_exhausted=True, updated_at=now
            )
            referral.escalation_exhausted = True
            _record(
                referral,
                kind=ReferralEvent.Kind.ESCALATION_FAILED,
                from_status=ReferralStatus.SENT,
                actor=None,
                note=f"{previous} ({hours:g} h)",
            )
            _alert(referral, previous)
            return "exhausted"
        Referral.objects.filter(pk=referral.pk).update(
            hospital_id=next_id, sent_at=now, updated_at=now
        )
        referral.hospital_id = next_id
        _record(
            referral,
            kind=ReferralEvent.Kind.ESCALATED,
            from_status=ReferralStatus.SENT,
            actor=None,
            note=f"{previous} ({hours:g} h)",
        )
        return "escalated"


def _alert(referral: Referral, hospital: Hospital | None) -> None:
    object_ref = f"referral:{referral.pk}"
    if AdminAlert.objects.filter(
        kind="referral_unanswered", object_ref=object_ref, resolved_at__isnull=True
    ).exists():
        return
    try:
        with transaction.atomic():
            AdminAlert.objects.create(
                kind="referral_unanswered",
                object_ref=object_ref,
                message=f"Referral {referral.pk} (screening {referral.screening_id}) was not answered "
                f"by {hospital} and no further candidate hospital remains.",
            )
    except IntegrityError:  # the same alert raised concurrently: one open alert is enough
        pass


def referrals_escalate_overdue(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The beat task's body: escalate every overdue referral; safe to run concurrently."""
    now = now or timezone.now()
    counts = {"escalated": 0, "exhausted": 0, "skipped": 0}
    for referral_id in referrals_overdue(now=now):
        counts[referral_escalate(referral_id=referral_id, now=now)] += 1
    return counts
