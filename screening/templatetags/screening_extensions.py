"""The result page's panels and the worklist's badges, as the downstream apps registered them in
``screening.extensions``:

    {% load screening_extensions %}{% screening_panels screening %}   (result page)
    {% load screening_extensions %}{% worklist_badges s %}            (a worklist row)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django import template
from django.utils.safestring import SafeString, mark_safe

from screening import extensions

if TYPE_CHECKING:
    from django.template.base import Template
from screening.models import Screening

register = template.Library()


def _render(context: template.Context, entry: Any, screening: Screening) -> str:
    # Rendered the way an inclusion tag renders: a fresh context with the parent's autoescape
    # and CSRF token, so a panel behaves as it did when it was the app's own inclusion tag.
    values = entry.context(request=context.get("request"), screening=screening)
    new_context = context.new(values)
    csrf_token = context.get("csrf_token")
    if csrf_token is not None:
        new_context["csrf_token"] = csrf_token
    # A tag renders inside a template, so the context is bound to one.
    engine = cast("Template", context.template).engine
    return engine.get_template(entry.template_name).render(new_context)


@register.simple_tag(takes_context=True)
def screening_panels(context: template.Context, screening: Screening) -> SafeString:
    return mark_safe(  # noqa: S308 - each part is a rendered template, escaped by it
        "".join(_render(context, panel, screening) for panel in extensions.panels())
    )


@register.simple_tag(takes_context=True)
def worklist_badges(context: template.Context, screening: Screening) -> SafeString:
    return mark_safe(  # noqa: S308 - each part is a rendered template, escaped by it
        "".join(_render(context, badge, screening) for badge in extensions.worklist_badges())
    )
