"""Filters for referrals' own pages (the screening page's referral panel and the worklist badge are
registered through ``screening.extensions``; see ``referrals.screening_hooks``)."""

from __future__ import annotations

from django import template

from referrals.ranking import specialty_label

register = template.Library()


@register.filter
def specialty_name(code: str) -> str:
    return specialty_label(code)
