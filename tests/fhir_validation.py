"""Checks shared by the FHIR export tests of the three apps.

``r4b`` validates with ``fhir.resources`` in the version the exports declare (R4B). ``fhir_js``
validates with an independent validator, the npm package ``fhir`` (FHIR.js, R4 definitions), run by
node. Install it outside git (``var/`` is ignored)::

    npm install --prefix var/fhir-validator fhir@4.12.0

or point ``FHIR_JS_DIR`` at a folder holding ``node_modules/fhir``. Where node or the package is
absent, the tests that need it skip and say so; everything else still runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from config import fhir as shared

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).with_name("fhir_validate.js")
DEFAULT_DIR = REPO_ROOT / "var" / "fhir-validator"


def r4b(body: bytes | str | dict):  # -> fhir.resources.R4B.bundle.Bundle
    """The export parsed by the R4B models (raises on anything invalid), after checking the
    declarations every export shares: the version in meta.profile, urn:uuid fullUrls, and every
    in-Bundle reference resolving to an entry."""
    from fhir.resources.R4B.bundle import Bundle

    data = json.loads(body) if isinstance(body, bytes | str) else body
    bundle = Bundle.model_validate(data)
    assert data["meta"]["profile"] == [shared.BUNDLE_PROFILE]
    assert data["type"] == "collection"
    urls = [e["fullUrl"] for e in data["entry"]]
    assert len(set(urls)) == len(urls), urls
    assert all(u.startswith("urn:uuid:") for u in urls), urls
    for ref in _references(data):
        assert ref["reference"] in urls, ref
    return bundle


def _references(node: object):
    if isinstance(node, dict):
        if "reference" in node:
            yield node
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def fhir_js_dir() -> Path | None:
    folder = Path(os.environ.get("FHIR_JS_DIR") or DEFAULT_DIR)
    return folder if (folder / "node_modules" / "fhir" / "package.json").exists() else None


def fhir_js(resources: list[dict]) -> list[dict]:
    """FHIR.js's verdict on each resource: ``{"valid": bool, "messages": [...]}``."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the independent FHIR validator (npm `fhir`) cannot run")
    folder = fhir_js_dir()
    if folder is None:
        pytest.skip(
            "the npm package `fhir` is not installed: run "
            "`npm install --prefix var/fhir-validator fhir@4.12.0` (or set FHIR_JS_DIR)"
        )
    done = subprocess.run(  # noqa: S603 - our script, our input
        [node, str(SCRIPT), str(folder)],
        input=json.dumps(resources),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


def assert_fhir_js_valid(resources: list[dict]) -> None:
    results = fhir_js(resources)
    assert len(results) == len(resources)
    problems = [
        (r.get("id"), m)
        for r, result in zip(resources, results, strict=True)
        for m in result["messages"]
        if m["severity"] == "error"
    ]
    assert not problems, problems
    assert all(result["valid"] for result in results)
