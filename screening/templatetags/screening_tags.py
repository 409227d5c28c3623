"""Template helpers screening offers the apps that show its results."""

from __future__ import annotations

from django import template

from screening.triage import reason_text as _reason_text

register = template.Library()


@register.filter
def reason_text(reason: object) -> str:
    """A stored triage reason as a sentence in the active language (never a dict's repr)."""
    return _reason_text(reason) if isinstance(reason, dict | str) else ""
