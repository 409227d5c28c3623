"""Template tags the screening app's pages use to show referrals without importing this app:

    {% load referral_tags %}{% referral_panel screening %}   (screening result page)
    {% load referral_tags %}{% referral_badge screening %}   (a worklist row)

For a worklist, prefetch ``referrals`` on the screenings (``prefetch_related("referrals")``) and
the badges cost no query per row."""

from __future__ import annotations

from django import template

from referrals.models import ReferralStatus
from referrals.presenters import snapshot_dict
from referrals.ranking import specialty_label
from referrals.selectors import referral_events, referral_for_screening

register = template.Library()
S = ReferralStatus

# Statuses where the health worker has something to do next.
NEEDS_ACTION = {S.PROPOSED, S.DECLINED, S.NO_SHOW}


@register.inclusion_tag("referrals/_panel.html")
def referral_panel(screening) -> dict:
    referral = referral_for_screening(screening=screening)
    if referral is None:
        return {"screening": screening, "referral": None}
    return {
        "screening": screening,
        "referral": referral,
        "events": referral_events(referral=referral),
        "candidates": [snapshot_dict(s) for s in referral.candidates or []],
        "required": [specialty_label(c) for c in referral.required_specialties or []],
        "needs_action": referral.status in NEEDS_ACTION or referral.escalation_exhausted,
    }


@register.inclusion_tag("referrals/_badge.html")
def referral_badge(screening) -> dict:
    referral = referral_for_screening(screening=screening)
    return {
        "referral": referral,
        "needs_action": bool(
            referral and (referral.status in NEEDS_ACTION or referral.escalation_exhausted)
        ),
    }


@register.filter
def specialty_name(code: str) -> str:
    return specialty_label(code)
