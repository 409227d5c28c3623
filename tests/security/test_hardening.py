"""Production settings, login throttling, session timeouts, security headers."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import string
import subprocess
import sys

import pytest
import time_machine

from tests.conftest import REPO_ROOT
from tests.factories import HealthWorkerFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db


def _prod_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "TEST_", "DATABASE_URL", "SECRET_KEY", "ALLOWED_HOSTS"))
    }
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.prod",
        SECRET_KEY="".join(secrets.choice(alphabet) for _ in range(50)),
        ALLOWED_HOSTS="example.org",
        **extra,
    )
    return env


def test_check_deploy_passes_with_production_settings():
    r = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=_prod_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no issues" in r.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_production_refuses_to_start_without_its_secrets(missing):
    env = _prod_env()
    env.pop(missing)
    r = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode != 0 and f"{missing} is required" in r.stderr


# --- throttling ----------------------------------------------------------------------------
def _login(client, username: str, password: str, ip: str = "192.0.2.10"):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def test_five_wrong_passwords_lock_that_username_from_that_address(client, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    UserFactory(username="nurse")
    for _ in range(5):
        assert _login(client, "nurse", "wrong").status_code in (200, 429)
    locked = _login(client, "nurse", "pw-test-123")
    assert locked.status_code == 429 and locked["Retry-After"] == "900"
    # Another address is not locked out (lockout is by username + IP, not a denial of service
    # on the account), and neither is another user at the same address.
    assert _login(client, "nurse", "pw-test-123", ip="198.51.100.20").status_code == 302
    UserFactory(username="other")
    assert _login(client, "other", "pw-test-123").status_code == 302


def test_the_lockout_ends_after_the_cool_off(client):
    UserFactory(username="nurse")
    with time_machine.travel(dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC), tick=False) as clock:
        for _ in range(5):
            _login(client, "nurse", "wrong")
        assert _login(client, "nurse", "pw-test-123").status_code == 429
        clock.shift(dt.timedelta(minutes=16))
        assert _login(client, "nurse", "pw-test-123").status_code == 302


def test_a_successful_sign_in_resets_the_failure_count(client):
    UserFactory(username="nurse")
    for _ in range(4):
        _login(client, "nurse", "wrong")
    assert _login(client, "nurse", "pw-test-123").status_code == 302
    client.post("/accounts/logout/")
    for _ in range(4):
        _login(client, "nurse", "wrong")
    assert _login(client, "nurse", "pw-test-123").status_code == 302


def test_the_api_token_endpoint_is_throttled_too(api_client):
    UserFactory(username="apiuser")
    for _ in range(5):
        r = api_client.post(
            "/api/v1/auth/token/", {"username": "apiuser", "password": "wrong"}, format="json"
        )
        assert r.status_code in (401, 429)
    r = api_client.post(
        "/api/v1/auth/token/", {"username": "apiuser", "password": "pw-test-123"}, format="json"
    )
    assert r.status_code == 429 and r.json()["code"] == "locked_out"


# --- sessions ------------------------------------------------------------------------------
def test_a_session_idle_for_more_than_30_minutes_is_signed_out(client):
    hw = HealthWorkerFactory()
    with time_machine.travel(dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC), tick=False) as clock:
        client.force_login(hw)
        assert client.get("/screening/patients/").status_code == 200
        clock.shift(dt.timedelta(minutes=29))
        assert client.get("/screening/patients/").status_code == 200
        clock.shift(dt.timedelta(minutes=31))
        r = client.get("/screening/patients/")
        assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


def test_a_session_ends_12_hours_after_sign_in_however_active(client):
    hw = HealthWorkerFactory()
    with time_machine.travel(dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC), tick=False) as clock:
        client.force_login(hw)
        for _ in range(35):  # every 20 minutes, never idle
            assert client.get("/screening/patients/").status_code == 200
            clock.shift(dt.timedelta(minutes=20))
        assert client.get("/screening/patients/").status_code == 200  # 11 h 40 min
        clock.shift(dt.timedelta(minutes=25))
        assert client.get("/screening/patients/").status_code == 302


# --- headers -------------------------------------------------------------------------------
def test_security_headers_are_on_every_page(client):
    r = client.get("/accounts/login/")
    csp = r["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "img-src 'self' data: blob:",
        "script-src 'self';",
        "style-src 'self' 'unsafe-inline'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ):
        assert directive in csp + ";"
    assert "unsafe-eval" not in csp
    assert "camera=(self)" in r["Permissions-Policy"] and "microphone=()" in r["Permissions-Policy"]
    assert r["X-Content-Type-Options"] == "nosniff"
    assert r["Referrer-Policy"] == "same-origin"
    assert r["X-Frame-Options"] == "DENY"


def test_the_map_tile_server_is_allowed_for_images_only(client, settings):
    settings.REFERRAL_MAP_TILE_URL = "https://{s}.tiles.example.kr/{z}/{x}/{y}.png"
    csp = client.get("/accounts/login/")["Content-Security-Policy"]
    assert "img-src 'self' data: blob: https://*.tiles.example.kr;" in csp
    assert csp.count("tiles.example.kr") == 1


def test_portal_pages_have_no_inline_script_the_csp_would_block(client):
    hw = HealthWorkerFactory()
    patient = PatientFactory(site=hw.site_membership.site)
    client.force_login(hw)
    for url in ("/accounts/login/", "/screening/patients/", f"/screening/patients/{patient.id}/"):
        html = client.get(url).content.decode()
        assert " onchange=" not in html and " onclick=" not in html and "<script>" not in html


def test_no_template_has_an_inline_script_or_event_handler():
    """script-src 'self' blocks inline <script> blocks and on*= handlers: they would silently stop
    working in the browser. Scripts belong in static files."""
    import re

    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
    handler = re.compile(r"\son[a-z]+\s*=\s*[\"']", re.IGNORECASE)
    templates = [p for p in REPO_ROOT.glob("**/templates/**/*.html") if ".venv" not in p.parts]
    assert len(templates) > 10
    offenders = [
        str(p.relative_to(REPO_ROOT))
        for p in templates
        if inline_script.search(p.read_text(encoding="utf-8"))
        or handler.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_production_static_files_collect_and_the_login_page_is_served(tmp_path):
    """The deploy path of platform/compose.yaml: collectstatic with the production settings
    (whitenoise's manifest storage fails on a missing referenced file, e.g. a source map),
    then gunicorn serves the login page and its hashed stylesheet."""
    import re
    import socket
    import time
    import urllib.request

    env = _prod_env(
        STATIC_ROOT=str(tmp_path / "static"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        SECURE_SSL_REDIRECT="false",
    )
    for cmd in (["collectstatic", "--noinput"], ["migrate", "--noinput"]):
        r = subprocess.run(
            [sys.executable, "manage.py", *cmd],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "static" / "staticfiles.json").is_file()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def get(path: str) -> tuple[int, bytes]:
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}",
                headers={"Host": "example.org", "X-Forwarded-Proto": "https"},
            )
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - local server
                return resp.status, resp.read()

        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = get("/accounts/login/")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        assert status == 200
        css = re.search(rb'href="(/static/css/app\.[0-9a-f]{12}\.css)"', body)
        assert css, body[:2000]
        assert get(css.group(1).decode())[0] == 200
    finally:
        server.terminate()
        server.wait(10)
