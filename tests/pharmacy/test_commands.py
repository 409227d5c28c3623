"""Management commands: the demo seed, the stock reconciliation and the kiosk CLI (over real HTTP)."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Role, User
from pharmacy.models import Kiosk, Medication, PharmacySiteLink, Prescription, StockLot
from pharmacy.services import prescription_propose_for_screening
from tests.factories import ScreeningFactory, SiteFactory
from tests.pharmacy.factories import approved_prescription, stock


@pytest.mark.django_db
def test_seed_demo_pharmacy_is_idempotent_and_prints_working_secrets(api_client):
    sites = [SiteFactory(), SiteFactory()]
    out = StringIO()
    call_command("seed_demo_pharmacy", stdout=out)
    counts = (Medication.objects.count(), StockLot.objects.count(), Kiosk.objects.count())
    again = StringIO()
    call_command("seed_demo_pharmacy", stdout=again)
    assert (Medication.objects.count(), StockLot.objects.count(), Kiosk.objects.count()) == counts
    assert counts[2] == 4  # two near 정선, one in 신안, one in 종로
    # A site of no demo centre is served by the main (정선) pharmacy, the pharmacist's.
    links = PharmacySiteLink.objects.filter(site__in=sites)
    assert links.count() == 2
    assert {link.pharmacy.region for link in links} == {"강원"}
    pharmacist = User.objects.get(username="pharmacist")
    assert pharmacist.role == Role.PHARMACIST and pharmacist.check_password("eyebridge-demo")
    secrets = re.findall(r"kiosk (\S+) secret (\S+)", out.getvalue())
    assert secrets == re.findall(r"kiosk (\S+) secret (\S+)", again.getvalue())
    kiosk_id, secret = secrets[0]
    api_client.credentials(HTTP_AUTHORIZATION=f"Kiosk {kiosk_id}:{secret}")
    assert api_client.post("/api/v1/kiosk/heartbeat/", {}, format="json").status_code == 200
    # The protocol proposes artificial tears for dryness with a normal fundus.
    screening = ScreeningFactory(patient__site=sites[0], triage="normal", symptoms=["dryness"])
    prescription = prescription_propose_for_screening(screening_id=screening.pk)
    assert prescription.items.get().medication.code == "sodium-hyaluronate-0-1"
    call_command("reconcile_stock", stdout=StringIO())


@pytest.mark.django_db
def test_reconcile_stock_reports_a_tampered_lot(kiosk, medication):
    lot = stock(kiosk, medication, 5)
    out = StringIO()
    call_command("reconcile_stock", stdout=out)
    assert "0 mismatches" in out.getvalue()
    StockLot.objects.filter(pk=lot.pk).update(quantity=7)  # an edit that bypassed the ledger
    with pytest.raises(CommandError):
        call_command("reconcile_stock", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_kiosk_simulate_cli_dispenses_through_http(
    live_server, pharmacist, kiosk_and_secret, medication
):
    kiosk, secret = kiosk_and_secret
    lot = stock(kiosk, medication, 3)
    prescription, code = approved_prescription(pharmacist, medication)
    out = StringIO()
    call_command(
        "kiosk_simulate",
        kiosk=kiosk.kiosk_id,
        secret=secret,
        code=code,
        base_url=live_server.url,
        yes=True,
        call=True,
        stdout=out,
    )
    assert "completed" in out.getvalue()
    prescription.refresh_from_db()
    lot.refresh_from_db()
    assert prescription.status == Prescription.Status.DISPENSED and lot.quantity == 2
    with pytest.raises(CommandError, match="code_used"):
        call_command(
            "kiosk_simulate",
            kiosk=kiosk.kiosk_id,
            secret=secret,
            code=code,
            base_url=live_server.url,
            yes=True,
            stdout=StringIO(),
        )
    call_command("reconcile_stock", stdout=StringIO())


def test_a_kiosk_secret_never_starts_with_a_dash(monkeypatch):
    # `--secret -abc` reads as an option on every command line, so such draws are thrown away.
    from pharmacy import codes

    draws = iter(["-uxoN16qO44PhFD73bWe0AC", "uxoN16qO44PhFD73bWe0AC-"])
    monkeypatch.setattr(codes.secrets, "token_urlsafe", lambda n: next(draws))
    assert codes.new_kiosk_secret() == "uxoN16qO44PhFD73bWe0AC-"


def test_kiosk_simulate_without_a_secret_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("EYEBRIDGE_KIOSK_SECRET", raising=False)
    with pytest.raises(CommandError, match="EYEBRIDGE_KIOSK_SECRET"):
        call_command("kiosk_simulate", kiosk="K-1", code="ABCD-EFGH", stdout=StringIO())
