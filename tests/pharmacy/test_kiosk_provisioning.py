"""Provisioning kiosks (issue 14, item 7): register (the secret shown once), rotate, retire, in the
Django admin and with `manage.py kiosk`, each change audited; a retired kiosk is refused and its
history kept."""

from __future__ import annotations

import getpass
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from accounts.audit import verify_chain
from accounts.models import AuditEvent
from pharmacy import codes
from pharmacy.models import Dispense, Kiosk, StockLot, StockMovement
from tests.factories import AdminFactory, UserFactory
from tests.pharmacy.conftest import kiosk_client, present
from tests.pharmacy.factories import approved_prescription, stock

pytestmark = pytest.mark.django_db

SECRET_RE = re.compile(r'<code class="kiosk-secret">([^<]+)</code>')


def heartbeat(kiosk_id: str, secret: str) -> int:
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Kiosk {kiosk_id}:{secret}")
    return client.post("/api/v1/kiosk/heartbeat/", {}, format="json").status_code


def kiosk_changes(change: str | None = None):
    events = AuditEvent.objects.filter(object_type="kiosk").order_by("id")
    return events.filter(extra__change=change) if change else events


def assert_no_secret_stored(secret: str) -> None:
    """The secret is in no audit row and no kiosk row (only its HMAC is)."""
    for event in AuditEvent.objects.all():
        assert secret not in str(event.extra) and secret not in event.path
    assert not Kiosk.objects.filter(secret_hash=secret).exists()
    assert verify_chain()[1] is None


@pytest.fixture
def admin_client(client):
    admin = AdminFactory()
    client.force_login(admin)
    client.admin = admin
    return client


# --- admin -------------------------------------------------------------------------------------


def test_admin_registers_a_kiosk_and_shows_its_secret_once(admin_client, pharmacy):
    response = admin_client.post(
        reverse("admin:pharmacy_kiosk_add"),
        {"pharmacy": pharmacy.pk, "name": "Lobby", "kiosk_id": "", "location": "1F"},
    )
    assert response.status_code == 200, response.content[:2000]
    assert "no-store" in response["Cache-Control"]
    (secret,) = SECRET_RE.findall(response.content.decode())
    kiosk = Kiosk.objects.get()
    assert re.fullmatch(r"K-[0-9A-F]{8}", kiosk.kiosk_id)
    assert (kiosk.name, kiosk.pharmacy, kiosk.status) == ("Lobby", pharmacy, "active")
    assert kiosk.secret_hash == codes.kiosk_secret_hash(secret)
    assert heartbeat(kiosk.kiosk_id, secret) == 200

    # Never shown again: not on the kiosk's page, the list, or a second visit.
    for url in (
        reverse("admin:pharmacy_kiosk_change", args=[kiosk.pk]),
        reverse("admin:pharmacy_kiosk_changelist"),
    ):
        page = admin_client.get(url)
        assert page.status_code == 200 and secret not in page.content.decode()

    (event,) = kiosk_changes("registered")
    assert (event.action, event.actor_id, event.object_ids) == (
        "create",
        admin_client.admin.pk,
        [str(kiosk.pk)],
    )
    assert event.extra["kiosk_id"] == kiosk.kiosk_id
    assert event.url_name == "admin:pharmacy_kiosk_add"
    assert_no_secret_stored(secret)


def test_admin_add_refuses_a_taken_or_malformed_kiosk_id(admin_client, pharmacy, kiosk):
    for kiosk_id in (kiosk.kiosk_id, "has:colon", "has space"):
        response = admin_client.post(
            reverse("admin:pharmacy_kiosk_add"),
            {"pharmacy": pharmacy.pk, "name": "Again", "kiosk_id": kiosk_id},
        )
        assert response.status_code == 200
        assert response.context["adminform"].form.errors.get("kiosk_id"), kiosk_id
    assert Kiosk.objects.count() == 1
    assert not kiosk_changes().exists()


def test_admin_rotate_action_asks_first_then_shows_the_new_secret(admin_client, kiosk_and_secret):
    kiosk, old = kiosk_and_secret
    changelist = reverse("admin:pharmacy_kiosk_changelist")
    selection = {"action": "rotate_secrets", "_selected_action": [kiosk.pk]}

    confirm = admin_client.post(changelist, selection)
    assert confirm.status_code == 200
    assert b'name="post" value="yes"' in confirm.content
    assert heartbeat(kiosk.kiosk_id, old) == 200  # nothing changed yet
    assert not kiosk_changes().exists()

    done = admin_client.post(changelist, {**selection, "post": "yes"})
    assert done.status_code == 200 and "no-store" in done["Cache-Control"]
    (new,) = SECRET_RE.findall(done.content.decode())
    assert new != old
    assert heartbeat(kiosk.kiosk_id, old) == 401
    assert heartbeat(kiosk.kiosk_id, new) == 200
    (event,) = kiosk_changes("secret_rotated")
    assert event.action == "update" and event.actor_id == admin_client.admin.pk
    assert_no_secret_stored(new)


def test_admin_rotate_button_on_the_kiosk_page(admin_client, kiosk_and_secret):
    kiosk, old = kiosk_and_secret
    page = admin_client.get(reverse("admin:pharmacy_kiosk_change", args=[kiosk.pk]))
    url = reverse("admin:pharmacy_kiosk_rotate_secret", args=[kiosk.pk])
    assert url in page.content.decode()
    assert admin_client.get(url).status_code == 200
    assert heartbeat(kiosk.kiosk_id, old) == 200
    (new,) = SECRET_RE.findall(admin_client.post(url, {"post": "yes"}).content.decode())
    assert heartbeat(kiosk.kiosk_id, new) == 200 and heartbeat(kiosk.kiosk_id, old) == 401
    assert kiosk_changes("secret_rotated").get().url_name == "admin:pharmacy_kiosk_rotate_secret"


def test_admin_retire_stops_the_kiosk_and_keeps_its_history(
    admin_client, pharmacist, kiosk_and_secret, medication
):
    kiosk, secret = kiosk_and_secret
    lot = stock(kiosk, medication, 3)
    _, code = approved_prescription(pharmacist, medication)
    assert present(kiosk_client(kiosk, secret), code).status_code == 201
    url = reverse("admin:pharmacy_kiosk_retire", args=[kiosk.pk])

    assert admin_client.get(url).status_code == 200
    assert heartbeat(kiosk.kiosk_id, secret) == 200
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302

    kiosk.refresh_from_db()
    assert kiosk.status == Kiosk.Status.RETIRED
    assert heartbeat(kiosk.kiosk_id, secret) == 401
    assert present(kiosk_client(kiosk, secret), code).status_code == 401
    # History is kept: the kiosk, its dispense, its lot and the ledger.
    assert Dispense.objects.filter(kiosk=kiosk).count() == 1
    assert StockLot.objects.filter(pk=lot.pk).exists()
    assert StockMovement.objects.filter(lot=lot).count() == 2
    (event,) = kiosk_changes("retired")
    assert event.extra["status"] == "retired" and event.actor_id == admin_client.admin.pk

    # Retiring again changes nothing and writes nothing; the page offers no more buttons, the
    # status cannot be edited back, and a rotation of a retired kiosk is left out.
    admin_client.post(url, {"post": "yes"})
    assert kiosk_changes("retired").count() == 1
    page = admin_client.get(reverse("admin:pharmacy_kiosk_change", args=[kiosk.pk]))
    assert url not in page.content.decode()
    assert "status" in page.context["adminform"].readonly_fields
    admin_client.post(
        reverse("admin:pharmacy_kiosk_changelist"),
        {"action": "rotate_secrets", "_selected_action": [kiosk.pk], "post": "yes"},
    )
    assert not kiosk_changes("secret_rotated").exists()
    assert heartbeat(kiosk.kiosk_id, secret) == 401


def test_admin_retire_action_on_the_list(admin_client, pharmacy, kiosk):
    from tests.pharmacy.factories import kiosk_for

    other, other_secret = kiosk_for(pharmacy, "Other")
    changelist = reverse("admin:pharmacy_kiosk_changelist")
    selection = {"action": "retire_kiosks", "_selected_action": [kiosk.pk, other.pk]}
    assert admin_client.post(changelist, selection).status_code == 200  # the confirmation
    assert Kiosk.objects.filter(status="retired").count() == 0
    assert admin_client.post(changelist, {**selection, "post": "yes"}).status_code == 302
    assert Kiosk.objects.filter(status="retired").count() == 2
    assert heartbeat(other.kiosk_id, other_secret) == 401
    assert kiosk_changes("retired").count() == 2


def test_admin_status_form_offers_maintenance_but_not_retired(admin_client, kiosk):
    url = reverse("admin:pharmacy_kiosk_change", args=[kiosk.pk])
    form = {"name": kiosk.name, "location": "", "latitude": "", "longitude": ""}
    response = admin_client.post(url, {**form, "status": "retired"})
    assert response.status_code == 200 and response.context["adminform"].form.errors["status"]
    assert admin_client.post(url, {**form, "status": "maintenance"}).status_code == 302
    kiosk.refresh_from_db()
    assert kiosk.status == "maintenance"


def test_kiosks_cannot_be_deleted_in_admin(admin_client, kiosk):
    url = reverse("admin:pharmacy_kiosk_delete", args=[kiosk.pk])
    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Kiosk.objects.filter(pk=kiosk.pk).exists()


def test_staff_without_kiosk_permission_cannot_rotate_or_retire(client, kiosk_and_secret):
    kiosk, secret = kiosk_and_secret
    client.force_login(UserFactory(is_staff=True))
    for name in ("rotate_secret", "retire"):
        url = reverse(f"admin:pharmacy_kiosk_{name}", args=[kiosk.pk])
        assert client.post(url, {"post": "yes"}).status_code == 403
    assert heartbeat(kiosk.kiosk_id, secret) == 200
    assert not kiosk_changes().exists()


# --- manage.py kiosk -----------------------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command("kiosk", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_command_registers_rotates_and_retires_with_audit(pharmacy):
    out = run("create", "--pharmacy", str(pharmacy.pk), "--name", "Gate", "--kiosk-id", "K-GATE")
    ((kiosk_id, secret),) = re.findall(r"kiosk (\S+) secret (\S+)", out)
    assert kiosk_id == "K-GATE" and heartbeat(kiosk_id, secret) == 200
    registered = kiosk_changes("registered").get()
    assert registered.actor_type == "system"
    assert registered.actor_username == f"shell:{getpass.getuser()}"
    assert registered.url_name == "manage.py kiosk create"

    ((_, new),) = re.findall(r"kiosk (\S+) secret (\S+)", run("rotate", "K-GATE"))
    assert heartbeat(kiosk_id, secret) == 401 and heartbeat(kiosk_id, new) == 200
    assert kiosk_changes("secret_rotated").count() == 1

    assert "retired" in run("retire", "K-GATE")
    assert heartbeat(kiosk_id, new) == 401
    assert "already retired" in run("retire", "K-GATE")
    assert kiosk_changes("retired").count() == 1
    with pytest.raises(CommandError, match="retired"):
        run("rotate", "K-GATE")
    assert Kiosk.objects.get(kiosk_id="K-GATE").status == "retired"  # kept, not deleted

    listing = run("list")
    assert "K-GATE\tretired" in listing and new not in listing and secret not in listing
    assert_no_secret_stored(new)


def test_command_records_the_admin_named_with_by(pharmacy):
    admin = AdminFactory(username="ops-admin")
    run("create", "--pharmacy", pharmacy.name, "--name", "Named", "--by", "ops-admin")
    event = kiosk_changes("registered").get()
    assert (event.actor_type, event.actor_id, event.actor_username) == (
        "user",
        admin.pk,
        "ops-admin",
    )
    with pytest.raises(CommandError, match="platform admin"):
        run("retire", Kiosk.objects.get().kiosk_id, "--by", UserFactory().username)
    assert Kiosk.objects.get().status == "active"


def test_command_refuses_bad_input_without_a_trace(pharmacy, kiosk):
    with pytest.raises(CommandError, match="kiosk_id_taken"):
        run("create", "--pharmacy", str(pharmacy.pk), "--name", "x", "--kiosk-id", kiosk.kiosk_id)
    with pytest.raises(CommandError, match="invalid_kiosk_id"):
        run("create", "--pharmacy", str(pharmacy.pk), "--name", "x", "--kiosk-id", "a:b")
    with pytest.raises(CommandError, match="no single pharmacy"):
        run("create", "--pharmacy", "no such pharmacy", "--name", "x")
    with pytest.raises(CommandError, match="no kiosk"):
        run("retire", "K-NOPE")
    assert Kiosk.objects.count() == 1
    assert not kiosk_changes().exists()
