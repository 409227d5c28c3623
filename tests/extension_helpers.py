"""Render one registered screening extension (a panel or worklist badge) as the page would."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string


def render_registered(
    entries: Iterable[Any], key: str, screening: Any, request: HttpRequest | None = None
) -> str:
    entry = next(e for e in entries if e.key == key)
    # No request to the template itself: context processors would add queries the page's
    # inclusion-style rendering does not make.
    return render_to_string(
        entry.template_name, entry.context(request=request, screening=screening)
    )
