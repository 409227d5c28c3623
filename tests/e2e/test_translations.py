"""The Korean catalogue is complete and its translations keep every placeholder of the English
(a missing %(name)s would raise at run time; an extra one would show a raw placeholder)."""

from __future__ import annotations

import json
import re

import polib

from tests.conftest import REPO_ROOT

PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|%[sdif]|\{\{\s*\w+\s*\}\}")
PO = REPO_ROOT / "locale/ko/LC_MESSAGES/django.po"


def test_every_korean_interface_string_is_translated():
    po = polib.pofile(str(PO))
    missing = [
        e.msgid
        for e in po
        if not e.obsolete
        and (not (e.msgstr or any(e.msgstr_plural.values())) or "fuzzy" in e.flags)
    ]
    assert missing == []
    assert len(po) > 500


def test_compiled_catalogue_matches_the_po_file():
    mo = polib.mofile(str(PO.with_suffix(".mo")))
    compiled = {e.msgid: e.msgstr or e.msgstr_plural.get(0, "") for e in mo}
    for entry in polib.pofile(str(PO)):
        if entry.obsolete:
            continue
        expected = entry.msgstr or entry.msgstr_plural.get(0, "")
        assert compiled.get(entry.msgid) == expected, entry.msgid


def test_translations_keep_the_placeholders():
    wrong = []
    for entry in polib.pofile(str(PO)):
        translations = (
            [entry.msgstr] if not entry.msgid_plural else list(entry.msgstr_plural.values())
        )
        for text in translations:
            found = sorted(PLACEHOLDER.findall(text))
            # Korean has one plural form: it may follow the singular or the plural English text.
            allowed = [
                sorted(PLACEHOLDER.findall(m)) for m in (entry.msgid, entry.msgid_plural) if m
            ]
            if found not in allowed:
                wrong.append((entry.msgid, text))
    assert wrong == []


def test_glossary_entries_are_non_empty_korean():
    """locale/ko.json is the translators' source of truth (scripts/i18n.py fills the .po from it)."""
    glossary = json.loads((REPO_ROOT / "locale/ko.json").read_text())
    assert all(isinstance(v, str) and v.strip() for v in glossary.values())
    hangul = re.compile(r"[\uac00-\ud7a3]")
    assert sum(1 for v in glossary.values() if hangul.search(v)) > 0.95 * len(glossary)
