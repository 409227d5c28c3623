"""Which URLs are audited, and as what.

Each app declares its own URL names next to its ``urls.py``, in ``<app>/audit_urls.py``: a plain
module with two tables, ``AUDITED = {url_name: Target(...)}`` and ``EXEMPT = {url_name: "reason
it carries no patient data"}``. ``collect()`` gathers them from every installed app when Django
starts (``AccountsConfig.ready``). Names are ``namespace:name``; fnmatch globs are allowed.

Every URL under ``AUDITED_PREFIXES`` must appear in one of the tables; tests/security/test_audit.py
walks the URLconf and fails for a pattern that is in neither, so a new endpoint cannot silently
escape auditing. In production an unlisted URL under those prefixes is audited anyway
(``object_type`` "unclassified"): failing towards a record, not towards silence. The prefixes
stay here, not with the apps, so that no app can take itself out of the audit.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import module_has_submodule

# URL prefixes whose every pattern must be classified (audited or exempt with a reason).
AUDITED_PREFIXES = (
    "/screening/",
    "/grading/",
    "/pharmacy/",
    "/referrals/",
    "/dashboard/",
    "/api/v1/",
    "/admin/",
)

# The module each app declares its URL names in.
MODULE_NAME = "audit_urls"


@dataclass(frozen=True)
class Target:
    """What an audited URL touches. ``action`` fixes the action for safe methods (``export`` for
    FHIR bundles and CSV exports); otherwise it follows the method."""

    object_type: str
    action: str | None = None


# URL name -> what it touches / why it is not audited. Filled in place by collect(), so that a
# module that imported these names before Django started sees the entries.
AUDITED_URLS: dict[str, Target] = {}
EXEMPT_URLS: dict[str, str] = {}

# Admin model views: <app_label>_<model>_<view>. Every admin page of a registered model is
# audited without being listed.
ADMIN_VIEWS = ("changelist", "add", "change", "delete", "history")

_V = TypeVar("_V")


def register(*, audited: Mapping[str, Target], exempt: Mapping[str, str], source: str) -> None:
    """Add one app's tables. A name declared twice (by two apps, or as both audited and exempt)
    is refused: which declaration won would depend on the order of INSTALLED_APPS."""
    for name in [*audited, *exempt]:
        if name in AUDITED_URLS or name in EXEMPT_URLS:
            raise ImproperlyConfigured(f"{source}: URL name {name!r} is already classified")
    duplicates = set(audited) & set(exempt)
    if duplicates:
        raise ImproperlyConfigured(f"{source}: both audited and exempt: {sorted(duplicates)}")
    for name, target in audited.items():
        if not isinstance(target, Target):
            raise ImproperlyConfigured(f"{source}: AUDITED[{name!r}] must be a Target")
    AUDITED_URLS.update(audited)
    EXEMPT_URLS.update(exempt)


def collect() -> None:
    """Register ``<app>.audit_urls`` of every installed app, in INSTALLED_APPS order. Starts
    from empty tables, so a second call (a test re-running app setup) gives the same result."""
    from django.apps import apps

    AUDITED_URLS.clear()
    EXEMPT_URLS.clear()
    for app_config in apps.get_app_configs():
        # module_has_submodule, not a caught ImportError: an import error inside an existing
        # audit_urls module must surface, not leave that app's URLs unclassified.
        if not module_has_submodule(app_config.module, MODULE_NAME):
            continue
        module = import_module(f"{app_config.name}.{MODULE_NAME}")
        register(
            audited=getattr(module, "AUDITED", {}),
            exempt=getattr(module, "EXEMPT", {}),
            source=module.__name__,
        )


def _match(table: dict[str, _V], name: str) -> _V | None:
    if name in table:
        return table[name]
    for pattern, value in table.items():
        if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(name, pattern):
            return value
    return None


def full_url_name(match) -> str:
    return f"{match.namespace}:{match.url_name}" if match.namespace else (match.url_name or "")


def _admin_model(url_name: str) -> str | None:
    """``app_model`` for an admin page of a registered model (its standard views and any custom
    view a ModelAdmin adds under its own prefix, e.g. a CSV import), else None."""
    if not url_name.startswith("admin:"):
        return None
    from django.contrib import admin

    view = url_name.removeprefix("admin:")
    for model in admin.site._registry:
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if view.startswith(prefix):
            return prefix[:-1]
    for suffix in ADMIN_VIEWS:
        if view.endswith("_" + suffix):
            return view.removesuffix("_" + suffix)
    return None


def classify(*, path: str, url_name: str) -> Target | None:
    """What an URL touches, or None when it is not audited. Pure (no request), so that the test
    can walk the URLconf through it. Every admin page of a model is audited (reads included):
    admin access is rare and powerful."""
    if not path.startswith(AUDITED_PREFIXES):
        return None
    model = _admin_model(url_name)
    if model is not None:
        return Target(f"admin:{model}")
    target = _match(AUDITED_URLS, url_name)
    if target is not None:
        return target
    if _match(EXEMPT_URLS, url_name) is not None:
        return None
    return Target("unclassified")


def is_classified(url_name: str) -> bool:
    """Listed explicitly (audited or exempt), for the URLconf walk test."""
    if _admin_model(url_name) is not None:
        return True
    return _match(AUDITED_URLS, url_name) is not None or _match(EXEMPT_URLS, url_name) is not None
