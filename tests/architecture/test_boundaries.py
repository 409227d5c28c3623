"""Data flows one way: screening -> (pharmacy | referrals) -> dashboard. Screening must not know
its downstream apps by name: no import, no ``import_module``/``get_model`` string, no template-tag
library or template of theirs, and no lookup string through their reverse relations (a
``prefetch_related("referrals__...")``). They take part through ``screening.extensions``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.apps import apps

from screening import extensions

ROOT = Path(__file__).resolve().parents[2]
DOWNSTREAM = ("grading", "pharmacy", "referrals", "dashboard")
# Who may import whom (an app never imports the apps above it).
ALLOWED = {
    "accounts": set(),
    "screening": {"accounts"},
    "grading": {"accounts", "screening"},
    "pharmacy": {"accounts", "screening"},
    "referrals": {"accounts", "screening"},
    "dashboard": {"accounts", "screening", "grading", "pharmacy", "referrals"},
}


def _python_files(app: str) -> list[Path]:
    return sorted(p for p in (ROOT / app).rglob("*.py"))


def _imported_apps(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(ALLOWED)


def _reverse_lookups_into_screening() -> set[str]:
    """The names by which screening's models reach the downstream apps' models (reverse
    relations such as ``Screening.referrals``)."""
    names: set[str] = set()
    for label in DOWNSTREAM:
        for model in apps.get_app_config(label).get_models():
            for f in model._meta.get_fields():
                remote = getattr(f, "remote_field", None)
                target = getattr(remote, "model", None)
                if (
                    f.is_relation
                    and f.concrete
                    and target is not None
                    and getattr(target._meta, "app_label", "") == "screening"
                ):
                    names.add(f.related_query_name())
                    accessor = remote.get_accessor_name()
                    if accessor:
                        names.add(accessor)
    return {name for name in names if not name.endswith("+")}  # "+": no reverse relation


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


@pytest.mark.parametrize("app", sorted(ALLOWED))
def test_an_app_imports_only_the_apps_below_it(app):
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_apps(path) - ALLOWED[app] - {app})
        for path in _python_files(app)
    }
    assert not {p: a for p, a in offenders.items() if a}


@pytest.mark.django_db
def test_screening_names_no_downstream_app_or_relation():
    reverse = _reverse_lookups_into_screening()
    assert "referrals" in reverse  # the check can see the relation it guards against
    by_name = re.compile(rf"^({'|'.join(DOWNSTREAM)})([._].*)?$")
    offenders = []
    for path in _python_files("screening"):
        for line, value in _string_constants(path):
            head = value.split("__")[0]
            if by_name.match(value) or head in reverse:
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {value!r}")
    assert not offenders


def test_screening_templates_load_no_downstream_tag_library_or_template():
    libraries = {
        p.stem
        for app in DOWNSTREAM
        for p in (ROOT / app / "templatetags").glob("*.py")
        if p.stem != "__init__"
    }
    assert "referral_tags" in libraries
    offenders = []
    for path in sorted((ROOT / "screening" / "templates").rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for load in re.findall(r"{%\s*load\s+([^%]+)%}", text):
            used = set(load.split()) & libraries
            if used:
                offenders.append(f"{path.relative_to(ROOT)}: loads {sorted(used)}")
        for name in re.findall(r"{%\s*(?:include|extends)\s+[\"']([^\"']+)", text):
            if name.split("/")[0] in DOWNSTREAM:
                offenders.append(f"{path.relative_to(ROOT)}: uses {name}")
    assert not offenders


def test_downstream_apps_take_part_through_the_extension_points():
    assert {p.key for p in extensions.panels()} >= {"grading", "pharmacy", "referrals"}
    assert "referrals" in {b.key for b in extensions.worklist_badges()}
    assert extensions.worklist_prefetches()
