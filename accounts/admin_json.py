# mypy: disable-error-code="has-type, misc, attr-defined"
"""JSON fields in the admin, readable: indented, Korean left as Korean, never one long line.

Every app's admin uses ``ModelAdmin``, ``TabularInline`` and ``StackedInline`` from here instead of
Django's. An editable JSON field gets an indented textarea; a JSON field the page only shows (a
read-only field, or any field for someone with view permission only) is rendered as an indented
``<pre>`` block. Django's own read-only rendering puts the whole value on one line with no spaces
to break at, which is what the admin showed before (issue 17.11)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.html import format_html
from django.utils.safestring import SafeString

# The suffix of the display callable that stands in for a read-only JSON field.
PRETTY_SUFFIX = "__json"


def json_pretty(value: Any) -> str:
    """Indented JSON, non-ASCII kept as is. A flat list of plain values stays on one line: it
    reads as a list ("D", "G") and an inline row stays short."""
    flat = isinstance(value, list) and all(
        v is None or isinstance(v, str | int | float | bool) for v in value
    )
    return json.dumps(value, indent=None if flat else 2, ensure_ascii=False, cls=DjangoJSONEncoder)


def json_html(value: Any) -> SafeString:
    return format_html('<pre class="eb-json">{}</pre>', json_pretty(value))


class PrettyJSONFormField(forms.JSONField):
    """Django's JSON form field, but the value is shown indented (``prepare_value``)."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value  # what the person typed, kept so that they can correct it
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)


def _display(field: models.JSONField) -> Callable[[models.Model], SafeString]:
    def show(obj: models.Model) -> SafeString:
        return json_html(getattr(obj, field.attname))

    show.short_description = field.verbose_name
    return show


class PrettyJSONMixin:
    """Shows each read-only JSON field through a display callable (``<name>__json``) that renders
    it as indented JSON, and gives editable JSON fields an indented textarea.

    The three methods that name the fields are wrapped on the instance, around whichever version
    the admin class defines: an admin that computes its own read-only fields (KioskAdmin,
    AuditEventAdmin) without calling super() gets the same rendering as one that lists them."""

    model: type[models.Model]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        json_fields = {
            f.name: f for f in self.model._meta.fields if isinstance(f, models.JSONField)
        }
        if not json_fields:
            return
        for name, field in json_fields.items():
            # On the instance: Django's admin looks display callables up with getattr.
            setattr(self, name + PRETTY_SUFFIX, _display(field))
        own_readonly = self.get_readonly_fields
        own_exclude = self.get_exclude
        own_fields = self.get_fields

        def shown_only(request, obj=None) -> list[str]:
            """The JSON fields this page shows but does not edit."""
            if not self.has_change_permission(request, obj):
                return list(json_fields)
            readonly = own_readonly(request, obj)
            return [name for name in json_fields if name in readonly]

        def pretty(names, shown: list[str]) -> list:
            out: list = []
            for name in names:
                if isinstance(name, str) and name in shown:
                    name = name + PRETTY_SUFFIX
                if name not in out:
                    out.append(name)
            return out

        def get_readonly_fields(request, obj=None):
            shown = shown_only(request, obj)
            return pretty([*own_readonly(request, obj), *shown], shown)

        def get_exclude(request, obj=None):
            exclude = own_exclude(request, obj)
            shown = shown_only(request, obj)
            if not shown:
                return exclude
            # The raw field leaves the form; its display callable is no form field either.
            return [*(exclude or ()), *shown, *(name + PRETTY_SUFFIX for name in shown)]

        def get_fields(request, obj=None):
            return pretty(own_fields(request, obj), shown_only(request, obj))

        self.get_readonly_fields = get_readonly_fields
        self.get_exclude = get_exclude
        self.get_fields = get_fields

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.JSONField):
            kwargs.setdefault("form_class", PrettyJSONFormField)
            kwargs.setdefault(
                "widget", forms.Textarea(attrs={"rows": 8, "cols": 80, "class": "vLargeTextField"})
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)


class ModelAdmin(PrettyJSONMixin, admin.ModelAdmin):
    pass


class TabularInline(PrettyJSONMixin, admin.TabularInline):
    pass


class StackedInline(PrettyJSONMixin, admin.StackedInline):
    pass
