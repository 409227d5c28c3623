"""Grading's interface strings are all marked for translation and all have Korean: in the
project's catalogue, or in grading_ko.json until that is merged into locale/. (The project-wide
checks in tests/e2e do not list the grading app.)"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import polib
import pytest

from tests.conftest import REPO_ROOT
from tests.e2e.test_untranslated_source import STRIP, _english

APP = REPO_ROOT / "grading"
TEMPLATES = sorted((APP / "templates").rglob("*.html"))
GETTEXT = {"_", "gettext", "gettext_lazy", "ngettext", "pgettext"}


def _korean() -> set[str]:
    known = set(json.loads(Path(__file__).with_name("grading_ko.json").read_text("utf-8")))
    known |= set(json.loads((REPO_ROOT / "locale/ko.json").read_text("utf-8")))
    po = polib.pofile(str(REPO_ROOT / "locale/ko/LC_MESSAGES/django.po"))
    return known | {e.msgid for e in po if e.msgstr or any(e.msgstr_plural.values())}


def _template_msgids(text: str) -> set[str]:
    found = set(re.findall(r"{%\s*translate\s+\"([^\"]+)\"", text))
    found |= set(re.findall(r"{%\s*translate\s+'([^']+)'", text))
    for body in re.findall(
        r"{%\s*blocktranslate\b[^%]*%}(.*?){%\s*(?:plural|endblocktranslate)", text, re.S
    ):
        found.add(re.sub(r"{{\s*(\w+)\s*}}", r"%(\1)s", body).strip())
    return found


def _python_msgids() -> set[str]:
    found = set()
    for path in APP.rglob("*.py"):
        if "migrations" in path.parts or "management" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", "")) in GETTEXT
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_no_visible_english_outside_a_translate_tag(path):
    text = path.read_text(encoding="utf-8")
    attrs = re.findall(r'\b(?:alt|title|placeholder|aria-label)="([^"{]*)"', text)
    for pattern in STRIP:
        text = pattern.sub(" ", text)
    visible = [line.strip() for line in text.splitlines() if _english(line)]
    assert visible + [a for a in attrs if _english(a)] == []


def test_every_grading_string_has_korean():
    msgids = _python_msgids()
    for path in TEMPLATES:
        msgids |= _template_msgids(path.read_text(encoding="utf-8"))
    assert len(msgids) > 50
    assert sorted(msgids - _korean()) == []


def test_the_korean_keeps_every_placeholder():
    placeholder = re.compile(r"%\(\w+\)[sdif]")
    pairs = json.loads(Path(__file__).with_name("grading_ko.json").read_text("utf-8"))
    assert [
        k
        for k, v in pairs.items()
        if sorted(placeholder.findall(k)) != sorted(placeholder.findall(v))
    ] == []
