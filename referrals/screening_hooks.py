"""Referrals' part in screening's pages and access rules, registered from ``ReferralsConfig.ready``
through ``screening.extensions`` (screening never imports referrals)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from django.http import HttpRequest

from accounts.models import Role
from referrals.models import Referral, ReferralStatus
from referrals.presenters import snapshot_dict
from referrals.ranking import specialty_label
from referrals.selectors import hospital_can_view_screening, referral_events, referral_for_screening
from screening import extensions
from screening.models import Screening

# Statuses where the health worker has something to do next.
NEEDS_ACTION = {ReferralStatus.PROPOSED, ReferralStatus.DECLINED, ReferralStatus.NO_SHOW}


def _needs_action(referral: Referral | None) -> bool:
    return bool(referral and (referral.status in NEEDS_ACTION or referral.escalation_exhausted))


def referral_panel_context(*, request: HttpRequest | None, screening: Screening) -> dict[str, Any]:
    """Status, history, the ranked candidates and what the health worker must do next."""
    referral = referral_for_screening(screening=screening)
    if referral is None:
        return {"screening": screening, "referral": None}
    return {
        "screening": screening,
        "referral": referral,
        "events": referral_events(referral=referral),
        "candidates": [snapshot_dict(s) for s in referral.candidates or []],
        "required": [specialty_label(c) for c in referral.required_specialties or []],
        "needs_action": _needs_action(referral),
    }


def referral_badge_context(*, request: HttpRequest | None, screening: Screening) -> dict[str, Any]:
    referral = referral_for_screening(screening=screening)
    return {"referral": referral, "needs_action": _needs_action(referral)}


def register() -> None:
    extensions.register_viewer(
        role=Role.HOSPITAL_STAFF, check=hospital_can_view_screening, key="referrals"
    )
    extensions.register_panel(
        extensions.Panel(
            key="referrals",
            template_name="referrals/_panel.html",
            context=referral_panel_context,
            order=20,
        )
    )
    extensions.register_worklist_badge(
        extensions.WorklistBadge(
            key="referrals",
            template_name="referrals/_badge.html",
            context=referral_badge_context,
            # The badge shows the referral's hospital: one joined query for the whole list.
            prefetch=(Prefetch("referrals", queryset=Referral.objects.select_related("hospital")),),
        )
    )
