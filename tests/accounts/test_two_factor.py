"""TOTP two-factor for pharmacists and admins, with real codes (django_otp.oath.totp)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditEvent, Role
from tests.factories import AdminFactory, HealthWorkerFactory, UserFactory

pytestmark = pytest.mark.django_db
START = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def code_for(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def enrol(client, user) -> TOTPDevice:
    """Through the setup page, as a person would: scan, type the current code."""
    r = client.get("/accounts/2fa/setup/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "<svg" in html and "otpauth://totp/EyeBridge" in html
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert device.key.upper() in html.replace("&amp;", "&").upper() or "secret=" in html
    r = client.post("/accounts/2fa/setup/", {"token": code_for(device)})
    assert r.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    return device


def sign_in(client, username: str):
    return client.post("/accounts/login/", {"username": username, "password": "pw-test-123"})


def test_a_pharmacist_enrols_then_needs_the_code_at_every_sign_in(client):
    pharmacist = UserFactory(username="pharm", role=Role.PHARMACIST)
    with time_machine.travel(START, tick=False) as clock:
        assert sign_in(client, "pharm").status_code == 302
        device = enrol(client, pharmacist)
        client.post("/accounts/logout/")

        clock.shift(dt.timedelta(seconds=60))
        assert sign_in(client, "pharm").status_code == 302
        # Password alone: every page sends to the code step, the admin and the API included.
        r = client.get("/pharmacy/")
        assert r.status_code == 302 and r["Location"] == "/accounts/2fa/verify/?next=%2Fpharmacy%2F"
        assert client.get("/admin/").status_code == 302
        r = client.get("/api/v1/prescriptions/")
        assert r.status_code == 403 and r.json()["code"] == "otp_required"

        r = client.post(
            "/accounts/2fa/verify/",
            {"token": "000000" if code_for(device) != "000000" else "111111", "next": "/pharmacy/"},
        )
        assert r.status_code == 400
        failed = AuditEvent.objects.filter(action="login_failed").latest("id")
        assert failed.actor_id == pharmacist.id and failed.extra == {"stage": "otp"}

        clock.shift(dt.timedelta(seconds=30))
        r = client.post("/accounts/2fa/verify/", {"token": code_for(device), "next": "/pharmacy/"})
        assert r.status_code == 302 and r["Location"] == "/pharmacy/"
        r = client.get("/pharmacy/")
        assert not (r.status_code == 302 and "/2fa/" in r.get("Location", ""))


def test_a_used_code_cannot_be_replayed(client):
    pharmacist = UserFactory(username="pharm", role=Role.PHARMACIST)
    with time_machine.travel(START, tick=False) as clock:
        sign_in(client, "pharm")
        device = enrol(client, pharmacist)
        client.post("/accounts/logout/")
        clock.shift(dt.timedelta(seconds=60))
        sign_in(client, "pharm")
        code = code_for(device)
        assert client.post("/accounts/2fa/verify/", {"token": code}).status_code == 302
        client.post("/accounts/logout/")
        clock.shift(dt.timedelta(seconds=5))  # same 30 s step
        sign_in(client, "pharm")
        assert client.post("/accounts/2fa/verify/", {"token": code}).status_code == 400


def test_the_next_parameter_cannot_send_to_another_site(client):
    pharmacist = UserFactory(username="pharm", role=Role.PHARMACIST)
    with time_machine.travel(START, tick=False) as clock:
        sign_in(client, "pharm")
        device = enrol(client, pharmacist)
        client.post("/accounts/logout/")
        clock.shift(dt.timedelta(seconds=60))
        sign_in(client, "pharm")
        r = client.post(
            "/accounts/2fa/verify/", {"token": code_for(device), "next": "https://evil.example/"}
        )
        assert r.status_code == 302 and r["Location"] == "/"


def test_an_admin_with_a_device_needs_the_code_for_the_admin_site(client):
    admin = AdminFactory(username="boss")
    with time_machine.travel(START, tick=False) as clock:
        client.force_login(admin)
        device = enrol(client, admin)
        client.post("/accounts/logout/")
        clock.shift(dt.timedelta(seconds=60))
        client.force_login(admin)
        r = client.get("/admin/accounts/auditevent/")
        assert r.status_code == 302 and r["Location"].startswith("/accounts/2fa/verify/")
        client.post("/accounts/2fa/verify/", {"token": code_for(device)})
        assert client.get("/admin/accounts/auditevent/").status_code == 200


def test_without_a_device_the_password_is_enough_and_health_workers_are_not_offered_it(client):
    UserFactory(username="pharm", role=Role.PHARMACIST)
    sign_in(client, "pharm")
    r = client.get("/pharmacy/")
    assert "/2fa/" not in r.get("Location", "")
    client.post("/accounts/logout/")
    client.force_login(HealthWorkerFactory())
    assert client.get("/accounts/2fa/setup/").status_code == 403


def test_the_api_token_needs_the_code_once_enrolled(client, api_client):
    pharmacist = UserFactory(username="pharm", role=Role.PHARMACIST)
    with time_machine.travel(START, tick=False) as clock:
        client.force_login(pharmacist)
        device = enrol(client, pharmacist)
        clock.shift(dt.timedelta(seconds=60))
        body = {"username": "pharm", "password": "pw-test-123"}
        r = api_client.post("/api/v1/auth/token/", body, format="json")
        assert r.status_code == 401 and r.json()["code"] == "otp_required"
        r = api_client.post("/api/v1/auth/token/", {**body, "otp": code_for(device)}, format="json")
        assert r.status_code == 200 and re.fullmatch(r"[0-9a-f]{40}", r.json()["token"])


def test_a_wrong_setup_code_does_not_confirm_the_device(client):
    pharmacist = UserFactory(username="pharm", role=Role.PHARMACIST)
    client.force_login(pharmacist)
    client.get("/accounts/2fa/setup/")
    device = TOTPDevice.objects.get(user=pharmacist)
    wrong = "123456" if code_for(device) != "123456" else "654321"
    assert client.post("/accounts/2fa/setup/", {"token": wrong}).status_code == 400
    device.refresh_from_db()
    assert not device.confirmed
