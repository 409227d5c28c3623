"""Fill and compile the message catalogs without GNU gettext at run time.

    python scripts/i18n.py          # makemessages (ko, en), fill Korean from locale/ko.json, compile .mo

`locale/ko.json` maps English msgids to Korean; it is the translators' source of truth and is merged
with what is already in the .po files. Prints the msgids still untranslated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
IGNORE = [".venv", "ml", "tests", "bench", "build", "var", "node_modules", "staticfiles"]


def main() -> int:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.test"),
    }
    cmd = [
        sys.executable,
        "manage.py",
        "makemessages",
        "-l",
        "ko",
        "-l",
        "en",
        "--no-obsolete",
        "-v",
        "0",
    ]
    for pattern in IGNORE:
        cmd += ["--ignore", pattern]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    glossary_path = ROOT / "locale" / "ko.json"
    glossary = json.loads(glossary_path.read_text()) if glossary_path.exists() else {}
    po = polib.pofile(str(ROOT / "locale/ko/LC_MESSAGES/django.po"))
    missing = []
    for entry in po:
        if entry.msgid in glossary:
            if entry.msgid_plural:
                entry.msgstr_plural = {0: glossary[entry.msgid]}
            else:
                entry.msgstr = glossary[entry.msgid]
            if "fuzzy" in entry.flags:
                entry.flags.remove("fuzzy")
        elif (not entry.msgstr or "fuzzy" in entry.flags) and not entry.obsolete:
            # A fuzzy entry is makemessages' guess from a similar msgid: not a translation.
            missing.append(entry.msgid)
    po.metadata["Plural-Forms"] = "nplurals=1; plural=0;"
    po.save()
    po.save_as_mofile(str(ROOT / "locale/ko/LC_MESSAGES/django.mo"))
    en = polib.pofile(str(ROOT / "locale/en/LC_MESSAGES/django.po"))
    en.save_as_mofile(str(ROOT / "locale/en/LC_MESSAGES/django.mo"))
    for msgid in missing:
        print("untranslated:", msgid.replace("\n", " ")[:120])
    print(f"{len(po) - len(missing)}/{len(po)} Korean strings translated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
