"""The result page's warning about a photo picked twice (screening.duplicate_photos)."""

from __future__ import annotations

from django import template

from screening.duplicate_photos import duplicate_photo_warnings as _warnings
from screening.models import Screening

register = template.Library()


@register.inclusion_tag("screening/_duplicate_photo_warnings.html")
def duplicate_photo_warnings(screening: Screening) -> dict:
    return {"warnings": _warnings(screening=screening)}
