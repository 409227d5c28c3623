"""The access-control matrix (issue 6, item 1): every URL pattern x actor x object -> expected status.

The table and the policy it encodes are in tests/security/matrix.py. One world (two organisations)
is built once for the module inside a transaction that is rolled back at the end; each case runs in
its own savepoint (pytest-django's ``db``), so an allowed POST cannot change what the next case sees.
"""

from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import transaction
from django.shortcuts import resolve_url
from django.test import Client, override_settings
from django.urls import reverse

from tests.security import matrix
from tests.security.matrix import MATRIX, entry_cases

pytestmark = pytest.mark.django_db

CASES = entry_cases()


@pytest.fixture(autouse=True)
def _media_in_tmp() -> None:
    """Overrides tests/conftest.py's per-test media folder: the world's photos live for the module."""


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    media = tmp_path_factory.mktemp("matrix-media")
    with override_settings(MEDIA_ROOT=media), django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            w = matrix.build_world()
            sessions = {}
            for actor, user in w["users"].items():
                client = Client()
                client.force_login(user)
                sessions[actor] = client.cookies[settings.SESSION_COOKIE_NAME].value
            w["sessions"] = sessions
            yield w
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def client_for(world: dict, actor: str, kind: str) -> tuple[Client, dict]:
    client = Client()
    headers: dict[str, str] = {}
    if actor == "kiosk":
        headers["HTTP_AUTHORIZATION"] = world["kiosk_auth"]
    elif actor != "anonymous":
        if kind in ("api", "kiosk"):
            headers["HTTP_AUTHORIZATION"] = f"Token {world['tokens'][actor]}"
        else:
            client.cookies[settings.SESSION_COOKIE_NAME] = world["sessions"][actor]
    return client, headers


def object_id(world: dict, entry: matrix.Entry, actor: str, kind: str):
    if kind == "missing":
        return world["missing"][entry.obj]
    side = matrix.side_of(actor) if kind == "own" else matrix.other(matrix.side_of(actor))
    return world[side][entry.obj]


def perform(world: dict, entry: matrix.Entry, method: str, actor: str, kind: str):
    client, headers = client_for(world, actor, entry.kind)
    obj = object_id(world, entry, actor, kind) if entry.obj else None
    kwargs = {entry.arg: obj} if entry.obj and entry.where == "path" else {}
    url = reverse(entry.name, kwargs=kwargs)
    if entry.obj and entry.where == "query":
        url += f"?{entry.arg}={obj}"
    if method == "GET":
        return client.get(url, **headers)
    body = entry.body(world, obj) if entry.body else {}
    if entry.name == "pharmacy-kiosk-dispense":
        headers["HTTP_IDEMPOTENCY_KEY"] = f"matrix-{actor}-{kind}"
    if entry.multipart or entry.kind not in ("api", "kiosk"):
        return client.post(url, body, **headers)
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


def check(expected: str, response) -> bool:
    code = response.status_code
    location = urlsplit(response.get("Location", "")).path
    if expected == "ok":
        return (
            code not in (401, 403, 404, 405)
            and code < 500
            and not (code == 302 and location in (resolve_url(settings.LOGIN_URL), "/admin/login/"))
        )
    if expected == "login":
        return code == 302 and location == resolve_url(settings.LOGIN_URL)
    if expected == "admin_login":
        return code == 302 and location == "/admin/login/"
    return code == int(expected)


@pytest.mark.parametrize("case", CASES, ids=[matrix.case_id(c) for c in CASES])
def test_access(world, case) -> None:
    entry, method, actor, kind = case
    expected = entry.expected(actor, kind, method)
    response = perform(world, entry, method, actor, kind)
    if os.environ.get("MATRIX_REPORT"):  # the observed matrix, for review (docs/reliability.md)
        with open(os.environ["MATRIX_REPORT"], "a") as report:
            report.write(
                f"{entry.name}\t{method}\t{actor}\t{kind}\t{response.status_code}\t{expected}\n"
            )
    assert response.status_code < 500, response.content[:500]
    assert check(expected, response), (
        f"{method} {entry.name} as {actor} on {kind} object: expected {expected}, got "
        f"{response.status_code} {response.get('Location', '')} {response.content[:300]!r}"
    )


def test_every_url_pattern_has_a_matrix_entry() -> None:
    """A new endpoint without a matrix entry fails the suite."""
    covered = {e.name for e in MATRIX}
    missing = [
        (name, route)
        for name, route in matrix.url_names()
        if name not in covered and not any(name.startswith(p) for p in matrix.EXCLUDED_PREFIXES)
    ]
    assert not missing, (
        f"URL patterns without an access-matrix entry (tests/security/matrix.py): {missing}"
    )


def test_the_matrix_names_only_existing_urls() -> None:
    names = {name for name, _ in matrix.url_names()}
    assert {e.name for e in MATRIX} <= names


LIST_CASES = [
    (entry, actor)
    for entry in MATRIX
    if entry.list_of and "GET" in entry.methods
    for actor in ("hw_a", "hw_b", "pharmacist", "staff_a", "staff_b")
]


def _row_ids(payload) -> set[int]:
    rows = payload.get("results", payload) if isinstance(payload, dict) else payload
    return {row["id"] for row in rows}


@pytest.mark.parametrize("entry,actor", LIST_CASES, ids=[f"{e.name}-{a}" for e, a in LIST_CASES])
def test_lists_show_no_foreign_rows(world, entry, actor) -> None:
    response = perform(world, entry, "GET", actor, "none")
    if response.status_code != 200:
        assert entry.expected(actor, "none", "GET") != "ok"
        return
    own = world[matrix.side_of(actor)]
    foreign = world[matrix.other(matrix.side_of(actor))]
    if entry.kind == "api":
        ids = _row_ids(response.json())
        assert foreign[entry.list_of] not in ids
        if entry.list_of in ("patient", "screening") and actor.startswith("hw"):
            assert own[entry.list_of] in ids  # the check can see a row when there is one
    else:
        html = response.content.decode()
        for name in foreign["names"]:
            assert name not in html
        if (
            entry.list_of in ("patient", "screening", "referral")
            and actor.startswith(("hw", "staff"))
            and (entry.list_of == "referral" or actor.startswith("hw"))
        ):
            assert own["names"][0] in html or own["names"][1] in html
