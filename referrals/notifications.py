"""Staff notifications of referral events (accounts.notifications): a referral sent or passed on
to a hospital tells that hospital's staff; the hospital's answer and the outcome tell the health
worker who did the screening.

Called by referrals.services._record, inside the transition's transaction: a transition that
rolls back notifies no one, and the emails leave after commit. The texts name the referral, the
site and the hospital, never the patient or a diagnosis: an email is read outside the portal, and
the link leads to the referral page, where access is checked and audited.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts.models import NotificationKind, User
from accounts.notifications import notification_send, per_language
from referrals.models import Referral, ReferralEvent

Kind = ReferralEvent.Kind

NEW_TITLE = gettext_noop("New referral #%(number)s from %(site)s")
NEW_URGENT_TITLE = gettext_noop("Urgent referral #%(number)s from %(site)s")
NEW_BODY = gettext_noop(
    "%(site)s has sent referral #%(number)s to %(hospital)s. Open it to accept it with an "
    "appointment, or to decline it."
)
ESCALATED_BODY = gettext_noop(
    "Referral #%(number)s from %(site)s was not answered in time by another hospital and has "
    "been passed on to %(hospital)s. Open it to accept it with an appointment, or to decline it."
)
# Hospital answers and outcomes: (title, body) per event kind.
OUTCOMES: dict[str, tuple[str, str]] = {
    Kind.ACCEPTED: (
        gettext_noop("%(hospital)s accepted referral #%(number)s"),
        gettext_noop("The appointment is on %(when)s."),
    ),
    Kind.DECLINED: (
        gettext_noop("%(hospital)s declined referral #%(number)s"),
        gettext_noop("Open the referral to see why and choose another hospital."),
    ),
    Kind.ATTENDED: (
        gettext_noop("The patient of referral #%(number)s attended %(hospital)s"),
        "",
    ),
    Kind.NO_SHOW: (
        gettext_noop("The patient of referral #%(number)s did not attend %(hospital)s"),
        gettext_noop("Contact the patient to book the visit again."),
    ),
    Kind.COMPLETED: (
        gettext_noop("%(hospital)s completed referral #%(number)s"),
        gettext_noop("Open the referral to read the hospital's diagnosis."),
    ),
}


def referral_event_notify_staff(*, event: ReferralEvent) -> int:
    """Notify the staff concerned by one referral event; returns how many were notified.
    Idempotent per event and person (dedupe key ``referral-event:<id>``)."""
    if event.kind not in OUTCOMES and event.kind not in (Kind.SENT, Kind.ESCALATED):
        return 0
    hospital = event.hospital
    if hospital is None:
        return 0
    referral: Referral = event.referral
    screening = referral.screening
    site = screening.site
    params: dict = {
        "number": referral.pk,
        "site": per_language(ko=site.name, en=site.name_en),
        "hospital": per_language(ko=hospital.name, en=hospital.name_en),
    }
    link = reverse("referrals:detail", args=[referral.pk])
    if event.kind in (Kind.SENT, Kind.ESCALATED):
        kind = NotificationKind.REFERRAL_NEW
        urgent = referral.urgency == Referral.Urgency.URGENT
        title = NEW_URGENT_TITLE if urgent else NEW_TITLE
        body = ESCALATED_BODY if event.kind == Kind.ESCALATED else NEW_BODY
        recipients = list(
            User.objects.filter(hospital_membership__hospital_id=hospital.pk, is_active=True)
        )
    else:
        kind = NotificationKind.REFERRAL_OUTCOME
        title, body = OUTCOMES[event.kind]
        if event.kind == Kind.ACCEPTED:
            when = referral.appointment_at
            params["when"] = f"{timezone.localtime(when):%Y-%m-%d %H:%M}" if when else "-"
        recipients = [screening.health_worker]
    sent = 0
    for user in recipients:
        sent += (
            notification_send(
                recipient=user,
                kind=kind,
                title=title,
                body=body,
                params=params,
                link=link,
                dedupe_key=f"referral-event:{event.pk}",
            )
            is not None
        )
    return sent
