"""No English text reaches a Korean page without passing through the catalogue: every message a
service, form or view raises or shows is marked for translation, and every visible word of a
template sits inside a translate tag. (The catalogue test sees only marked strings; this one
finds the strings that were never marked.)"""

from __future__ import annotations

import ast
import re

import pytest

from tests.conftest import REPO_ROOT

APPS = ("accounts", "screening", "pharmacy", "referrals", "grading", "dashboard", "config")
# Calls whose first argument is shown to a person.
SHOWN = {
    "InvalidInput",
    "NotFound",
    "Forbidden",
    "Conflict",
    "ValidationError",
    "PermissionDenied",
    "add_error",
    "success",
    "error",
    "warning",
    "info",
}
# Words that are the same in every language (names, standards, units).
SAME_IN_EVERY_LANGUAGE = {
    "EyeBridge",
    "FHIR",
    "JSON",
    "CSV",
    "API",
    "OpenAPI",
    "HL7",
    "DICOM",
    "ODIR",
    "km",
    "mmHg",
    "TOTP",
    "QR",
    "SMS",
    "ID",
    "URL",
    "OK",
    "English",  # the language picker names each language in itself
}


def _python_sources():
    for app in APPS:
        for path in sorted((REPO_ROOT / app).rglob("*.py")):
            parts = set(path.relative_to(REPO_ROOT).parts)
            if parts & {"migrations", "management", "tests"}:
                continue
            yield path


def _english(text: str) -> bool:
    words = re.findall(r"[A-Za-z][A-Za-z']+", text)
    # All-capital words are codes and abbreviations ("ABCD-EFGH", "HbA1c" aside).
    return any(w not in SAME_IN_EVERY_LANGUAGE and len(w) > 2 and not w.isupper() for w in words)


def test_every_message_shown_to_a_person_is_marked_for_translation():
    offenders = []
    for path in _python_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in SHOWN:
                continue
            if name in {"success", "error", "warning", "info"} and not (
                isinstance(func, ast.Attribute) and getattr(func.value, "id", "") == "messages"
            ):
                continue
            first = node.args[1] if name == "add_error" and len(node.args) > 1 else node.args[0]
            if (
                isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and _english(first.value)
            ):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {first.value!r}")
            if isinstance(first, ast.JoinedStr):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: an f-string")
    assert offenders == []


TEMPLATE_DIRS = [REPO_ROOT / "templates", *(REPO_ROOT / app / "templates" for app in APPS)]
STRIP = [
    re.compile(r"{%\s*(blocktranslate|blocktrans)\b.*?{%\s*end\1\s*%}", re.S),
    re.compile(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", re.S),
    re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I),
    re.compile(r"{#.*?#}", re.S),
    re.compile(r"{%.*?%}", re.S),
    re.compile(r"{{.*?}}", re.S),
    re.compile(r"<!--.*?-->", re.S),
    re.compile(r"<[^>]*>", re.S),
    re.compile(r"&[a-z]+;|&#\d+;"),
]


def _templates():
    for folder in TEMPLATE_DIRS:
        if folder.exists():
            yield from sorted(p for p in folder.rglob("*.html") if "admin" not in p.parts)


@pytest.mark.parametrize("path", list(_templates()), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_visible_english_outside_a_translate_tag(path):
    text = path.read_text(encoding="utf-8")
    # Attributes a person reads (alt, title, placeholder, aria-label) count as visible text.
    attrs = re.findall(r'\b(?:alt|title|placeholder|aria-label)="([^"{]*)"', text)
    for pattern in STRIP:
        text = pattern.sub(" ", text)
    visible = [line.strip() for line in text.splitlines() if _english(line)]
    visible += [a for a in attrs if _english(a)]
    assert visible == []
