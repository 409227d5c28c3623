"""JSON fields in the admin, readable: indented, Korean left as Korean, never one long line.

Every app's admin uses ``ModelAdmin``, ``TabularInline`` and ``StackedInline`` from here instead of
Django's. An editable JSON field gets an indented textarea; a JSON field the page only shows (a
read-only field, or any field for someone with view permission only) is rendered as an indented
``<pre>`` block. Django's own read-only rendering puts the whole value on one line with no spaces
to break at, which is what the admin showed before (issue 17.11)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

# The suffix of the display callable that stands in for a read-only JSON field.
PRETTY_SUFFIX = "__json"

if TYPE_CHECKING:  # the mixin's super() is an admin: type-check it against one
    _Base = admin.options.BaseModelAdmin
else:
    _Base = object


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

    show.short_description = field.verbose_name  # type: ignore[attr-defined]
    return show


class PrettyJSONMixin(_Base):
    """Shows each read-only JSON field through a display callable (``<name>__json``) that renders
    it as indented JSON, and gives editable JSON fields an indented textarea.

    An admin that computes its own read-only fields overrides :meth:`base_readonly_fields` (and
    :meth:`base_fields`), not ``get_readonly_fields`` (``get_fields``): the mixin's ``get_readonly_fields``, ``get_exclude`` and
    ``get_fields`` then swap the JSON ones for their display callables whatever that computes."""

    model: type[models.Model]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._json_fields = {
            f.name: f for f in self.model._meta.fields if isinstance(f, models.JSONField)
        }
        for name, field in self._json_fields.items():
            # On the instance: Django's admin looks display callables up with getattr.
            setattr(self, name + PRETTY_SUFFIX, _display(field))

    def base_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None) -> Any:
        """The read-only fields before the JSON ones are swapped: Django's by default."""
        return super().get_readonly_fields(request, obj)

    def _shown_only(self, request: HttpRequest, obj: models.Model | None) -> list[str]:
        """The JSON fields this page shows but does not edit."""
        if not self._json_fields:
            return []
        if not self.has_change_permission(request, obj):
            return list(self._json_fields)
        readonly = self.base_readonly_fields(request, obj)
        return [name for name in self._json_fields if name in readonly]

    @staticmethod
    def _pretty(names: Sequence[Any], shown: list[str]) -> list[Any]:
        out: list[Any] = []
        for name in names:
            if isinstance(name, str) and name in shown:
                name = name + PRETTY_SUFFIX
            if name not in out:
                out.append(name)
        return out

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None) -> Any:
        shown = self._shown_only(request, obj)
        return self._pretty([*self.base_readonly_fields(request, obj), *shown], shown)

    def get_exclude(self, request: HttpRequest, obj: models.Model | None = None) -> Any:
        exclude = super().get_exclude(request, obj)
        shown = self._shown_only(request, obj)
        if not shown:
            return exclude
        # The raw field leaves the form; its display callable is no form field either.
        return [*(exclude or ()), *shown, *(name + PRETTY_SUFFIX for name in shown)]

    def base_fields(self, request: HttpRequest, obj: models.Model | None = None) -> Any:
        """The page's fields before the JSON ones are swapped: Django's by default."""
        return super().get_fields(request, obj)

    def get_fields(self, request: HttpRequest, obj: models.Model | None = None) -> Any:
        return self._pretty(self.base_fields(request, obj), self._shown_only(request, obj))

    def formfield_for_dbfield(
        self, db_field: models.Field, request: HttpRequest, **kwargs: Any
    ) -> Any:
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
