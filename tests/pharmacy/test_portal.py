"""The pharmacist portal, the health worker's request form and panel, the QR code, the simulator page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import RequestFactory
from django.utils import timezone

from pharmacy.models import KioskCallRequest, PharmacyAlert, Prescription
from pharmacy.services import kiosk_heartbeat
from screening import extensions
from tests.extension_helpers import render_registered
from tests.factories import HealthWorkerFactory, ScreeningFactory, SiteFactory
from tests.pharmacy.factories import (
    MedicationFactory,
    PharmacistFactory,
    PharmacyFactory,
    approved_prescription,
    link,
    pending_prescription,
    stock,
)

pytestmark = pytest.mark.django_db


def test_queue_shows_pending_with_warnings_in_constant_queries(client, pharmacist, pharmacy):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    medication = MedicationFactory(allergy_keywords="benzalkonium")
    client.force_login(pharmacist)

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/pharmacy/").status_code == 200
        return len(ctx.captured_queries)

    pending_prescription(
        pharmacy, medication, symptoms=["dryness"], patient__allergies="benzalkonium"
    )
    client.get("/pharmacy/")
    few = count_queries()
    for _ in range(5):
        pending_prescription(pharmacy, MedicationFactory(), symptoms=["itching"])
    assert count_queries() == few  # no N+1 as the queue grows
    html = client.get("/pharmacy/").content.decode()
    assert html.count('class="card triage-') == 6
    assert "benzalkonium" in html


def test_queue_is_forbidden_to_health_workers_and_needs_login(client):
    assert client.get("/pharmacy/").status_code == 302
    client.force_login(HealthWorkerFactory())
    assert client.get("/pharmacy/").status_code == 403


def test_approve_through_the_portal(client, pharmacist, pharmacy, medication):
    prescription = pending_prescription(pharmacy, medication)
    client.force_login(pharmacist)
    url = f"/pharmacy/prescriptions/{prescription.pk}/"
    assert client.get(url).status_code == 200
    fields = {
        f"{f}_{lang}": f"{f} {lang}"
        for f in ("dose", "frequency", "duration", "warnings")
        for lang in ("ko", "en")
    }
    incomplete = client.post(url, {"action": "approve", **fields, "warnings_en": ""})
    assert incomplete.status_code == 200
    prescription.refresh_from_db()
    assert prescription.status == "pending_approval"
    response = client.post(url, {"action": "approve", **fields})
    assert response.status_code == 302
    prescription.refresh_from_db()
    assert prescription.status == "approved"
    assert prescription.counselling["en"]["warnings"] == "warnings en"
    page = client.get(url).content.decode()
    assert "qr.svg" in page


def test_reject_through_the_portal_needs_reason(client, pharmacist, pharmacy, medication):
    prescription = pending_prescription(pharmacy, medication)
    client.force_login(pharmacist)
    url = f"/pharmacy/prescriptions/{prescription.pk}/"
    client.post(url, {"action": "reject", "reason": ""})
    prescription.refresh_from_db()
    assert prescription.status == "pending_approval"
    assert client.post(url, {"action": "reject", "reason": "안과 진료 필요"}).status_code == 302
    prescription.refresh_from_db()
    assert prescription.status == "rejected"


def test_other_pharmacys_prescription_page_is_404(client, pharmacy, medication):
    prescription = pending_prescription(pharmacy, medication)
    client.force_login(PharmacistFactory(pharmacy=PharmacyFactory()))
    assert client.get(f"/pharmacy/prescriptions/{prescription.pk}/").status_code == 404
    assert client.get(f"/pharmacy/prescriptions/{prescription.pk}/qr.svg").status_code == 404


def test_stock_page_shows_alerts(client, pharmacist, pharmacy, kiosk, medication, settings):
    today = timezone.localdate()
    stock(kiosk, medication, 2, lot="LOW")
    stock(kiosk, medication, 4, lot="SOON", slot="A2", expiry=today + dt.timedelta(days=10))
    stock(kiosk, medication, 1, lot="GONE", slot="A3", expiry=today - dt.timedelta(days=1))
    PharmacyAlert.objects.create(
        pharmacy=pharmacy,
        kiosk=kiosk,
        kind="dispense_failed",
        object_ref="dispense:1",
        message="jam at kiosk",
    )
    client.force_login(pharmacist)
    html = client.get("/pharmacy/stock/").content.decode()
    assert "alert-offline" in html  # never sent a heartbeat
    assert "alert-expiring" in html and "alert-expired" in html
    assert "alert-low_stock" not in html  # 6 usable boxes
    assert "jam at kiosk" in html
    settings.PHARMACY_LOW_STOCK_THRESHOLD = 10
    kiosk_heartbeat(kiosk=kiosk, info={})
    html = client.get("/pharmacy/stock/").content.decode()
    assert "alert-low_stock" in html and "alert-offline" not in html


def test_stock_write_off_through_portal_never_goes_negative(client, pharmacist, kiosk, medication):
    lot = stock(kiosk, medication, 2)
    client.force_login(pharmacist)
    client.post("/pharmacy/stock/", {"lot": lot.pk, "delta": -5, "reason": "write_off"})
    lot.refresh_from_db()
    assert lot.quantity == 2
    client.post(
        "/pharmacy/stock/", {"lot": lot.pk, "delta": -2, "reason": "write_off", "note": "broken"}
    )
    lot.refresh_from_db()
    assert lot.quantity == 0
    assert lot.movements.filter(reason="write_off", actor=pharmacist).exists()


def test_calls_page_answers_a_call(client, pharmacist, kiosk):
    call = KioskCallRequest.objects.create(kiosk=kiosk, pharmacy=kiosk.pharmacy, message="help")
    client.force_login(pharmacist)
    assert "help" in client.get("/pharmacy/calls/").content.decode()
    client.post("/pharmacy/calls/", {"call": call.pk})
    call.refresh_from_db()
    assert call.status == "answered" and call.answered_by == pharmacist


def test_dispense_history_page(client, pharmacist):
    client.force_login(pharmacist)
    assert client.get("/pharmacy/dispenses/").status_code == 200


def test_health_worker_request_form(client, pharmacy, medication):
    screening = ScreeningFactory()
    link(pharmacy, screening.site)
    client.force_login(screening.health_worker)
    url = f"/pharmacy/request/?screening={screening.pk}"
    assert medication.name_ko in client.get(url).content.decode()
    client.post(url, {"screening": screening.pk, "medication": medication.pk, "quantity": 99})
    assert not Prescription.objects.exists()
    response = client.post(
        url, {"screening": screening.pk, "medication": medication.pk, "quantity": 1, "note": "건조"}
    )
    assert response.status_code == 302
    assert Prescription.objects.get().requested_by == screening.health_worker
    other = ScreeningFactory()
    assert client.get(f"/pharmacy/request/?screening={other.pk}").status_code == 404
    assert client.get("/pharmacy/request/?screening=abc").status_code == 404


def render_panel(user, screening) -> str:
    request = RequestFactory().get("/")
    request.user = user
    return render_registered(extensions.panels(), "pharmacy", screening, request)


def test_panel_shows_code_to_the_sites_health_worker_only_once_approved(
    pharmacist, medication, django_assert_max_num_queries
):
    prescription, code = approved_prescription(pharmacist, medication, symptoms=["dryness"])
    second = Prescription.objects.create(
        pharmacy=prescription.pharmacy,
        patient=prescription.patient,
        screening=prescription.screening,
        source="user",
    )
    second.items.create(medication=MedicationFactory(), quantity=1)
    worker = prescription.screening.health_worker
    worker = type(worker).objects.select_related("site_membership").get(pk=worker.pk)
    with django_assert_max_num_queries(2):
        html = render_panel(worker, prescription.screening)
    assert f"{code[:4]}-{code[4:]}" in html
    assert "pharmacy/request/?screening=" in html
    stranger = HealthWorkerFactory(site=SiteFactory())
    html = render_panel(stranger, prescription.screening)
    assert code[:4] not in html and medication.name_ko not in html


def test_panel_hides_code_while_pending(pharmacy, medication):
    prescription = pending_prescription(pharmacy, medication)
    html = render_panel(prescription.screening.health_worker, prescription.screening)
    assert medication.name_ko in html and 'class="code"' not in html


def test_qr_code_for_health_worker_of_the_site(client, pharmacist, medication):
    prescription, _ = approved_prescription(pharmacist, medication)
    client.force_login(prescription.screening.health_worker)
    response = client.get(f"/pharmacy/prescriptions/{prescription.pk}/qr.svg")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert b"<svg" in response.content


def test_kiosk_simulator_page_renders(client):
    response = client.get("/pharmacy/kiosk-simulator/")
    assert response.status_code == 200
    assert b"pharmacy/kiosk.js" in response.content


def test_pharmacist_may_view_screenings_routed_to_their_pharmacy_only(
    pharmacist, pharmacy, medication
):
    from pharmacy.selectors import pharmacist_can_view_screening

    prescription = pending_prescription(pharmacy, medication)
    other = ScreeningFactory()
    assert pharmacist_can_view_screening(user=pharmacist, screening_id=prescription.screening_id)
    assert not pharmacist_can_view_screening(user=pharmacist, screening_id=other.pk)
    assert not pharmacist_can_view_screening(
        user=prescription.screening.health_worker, screening_id=prescription.screening_id
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["complete", "jam"])
def test_kiosk_simulator_script_dispenses_through_the_real_api(
    live_server, pharmacist, kiosk_and_secret, medication, mode
):
    """Runs the simulator page's own JavaScript (Node, minimal fake DOM) against a live server."""
    import json
    import shutil
    import subprocess
    from pathlib import Path

    node = shutil.which("node")
    assert node, "Node.js is needed to run the simulator script"
    kiosk, secret = kiosk_and_secret
    lot = stock(kiosk, medication, 2)
    prescription, code = approved_prescription(pharmacist, medication)
    harness = Path(__file__).with_name("kiosk_simulator_harness.js")
    done = subprocess.run(
        [node, str(harness), live_server.url, kiosk.kiosk_id, secret, code, mode],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["result"] == ("DONE" if mode == "complete" else "JAM")
    assert "frequency" in out["guidance"].lower() or "Frequency" in out["guidance"]
    assert len(set(out["keys"])) == 2  # a new Idempotency-Key per attempt
    prescription.refresh_from_db()
    lot.refresh_from_db()
    assert prescription.status == ("dispensed" if mode == "complete" else "approved")
    assert lot.quantity == (1 if mode == "complete" else 2)
    assert KioskCallRequest.objects.filter(kiosk=kiosk).count() == 1


def test_pharmacist_receives_stock_on_the_stock_page(client, pharmacist, kiosk, medication):
    from pharmacy.models import StockLot

    client.force_login(pharmacist)
    assert "Receive stock" in client.get("/pharmacy/stock/").content.decode()
    expiry = (timezone.localdate() + dt.timedelta(days=200)).isoformat()
    form = {
        "action": "receive",
        "kiosk": kiosk.pk,
        "slot": "B3",
        "medication": medication.pk,
        "lot_number": "R-1",
        "expiry": expiry,
        "quantity": 12,
    }
    client.post("/pharmacy/stock/", {**form, "quantity": -3})
    assert not StockLot.objects.exists()
    other_kiosk = kiosk_for_other_pharmacy()
    client.post("/pharmacy/stock/", {**form, "kiosk": other_kiosk.pk})
    assert not StockLot.objects.exists()
    client.post("/pharmacy/stock/", form)
    lot = StockLot.objects.get()
    assert (lot.kiosk, lot.slot, lot.quantity) == (kiosk, "B3", 12)
    assert lot.movements.get().actor == pharmacist


def kiosk_for_other_pharmacy():
    from tests.pharmacy.factories import kiosk_for

    return kiosk_for(PharmacyFactory(), "elsewhere")[0]


def test_prescription_page_shows_the_triage_reasons_as_sentences(
    client, pharmacist, pharmacy, medication
):
    prescription = pending_prescription(pharmacy, medication)
    screening = prescription.screening
    screening.reasons = [{"code": "treatable_symptom", "symptom": "dryness"}]
    screening.save(update_fields=["reasons"])
    client.force_login(pharmacist)
    page = client.get(f"/pharmacy/prescriptions/{prescription.pk}/").content.decode()
    assert "treatable_symptom" not in page and "{&#x27;" not in page
    assert "Symptom a pharmacist can treat" in page or "약사가 처리할 수 있는 증상" in page
