"""The kiosk simulator's demo-kiosk picker: in development (DEBUG) it lists the seeded demo kiosks
and fills in a chosen one's credential; in production it is absent and its parameter is a 404."""

from __future__ import annotations

import html
import io
import re

import pytest
from django.core.management import call_command

from pharmacy import codes
from pharmacy.demo import demo_kiosk_secret, demo_kiosks
from pharmacy.models import Kiosk
from tests.pharmacy.factories import PharmacyFactory, kiosk_for

pytestmark = pytest.mark.django_db

URL = "/pharmacy/kiosk-simulator/"


@pytest.fixture
def seeded(db):
    call_command("seed_demo_pharmacy", stdout=io.StringIO())


def test_in_development_the_page_lists_the_demo_kiosks_and_fills_in_one(
    client, api_client, settings, seeded
):
    settings.DEBUG = True
    other, _secret = kiosk_for(PharmacyFactory(), "a real kiosk")
    page = client.get(URL).content.decode()
    picker = re.search(r'<select id="demo-kiosk".*?</select>', page, re.S).group(0)
    listed = re.findall(r'<option value="([^"]+)"', picker)
    assert listed == ["K-DEMO-1", "K-DEMO-2", "K-DEMO-3", "K-DEMO-4"]
    assert other.kiosk_id not in page
    assert "data-demo-kiosk-secret" not in page  # nothing filled in until one is chosen

    response = client.get(URL, {"demo_kiosk": "K-DEMO-3"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-demo-kiosk-id="K-DEMO-3"' in page
    secret = html.unescape(re.search(r'data-demo-kiosk-secret="([^"]+)"', page).group(1))
    assert secret == demo_kiosk_secret("K-DEMO-3")
    # The credential it fills in is the kiosk's working one.
    api_client.credentials(HTTP_AUTHORIZATION=f"Kiosk K-DEMO-3:{secret}")
    assert api_client.post("/api/v1/kiosk/heartbeat/", {}, format="json").status_code == 200


def test_in_development_only_seeded_demo_kiosks_can_be_chosen(client, settings, seeded):
    settings.DEBUG = True
    other, _secret = kiosk_for(PharmacyFactory(), "a real kiosk")
    assert client.get(URL, {"demo_kiosk": other.kiosk_id}).status_code == 404
    assert client.get(URL, {"demo_kiosk": "K-DEMO-99"}).status_code == 404
    # A demo kiosk whose secret was rotated (in the admin) is no longer a seeded demo kiosk.
    Kiosk.objects.filter(kiosk_id="K-DEMO-2").update(
        secret_hash=codes.kiosk_secret_hash(codes.new_kiosk_secret())
    )
    assert client.get(URL, {"demo_kiosk": "K-DEMO-2"}).status_code == 404
    assert "K-DEMO-2" not in [d.kiosk.kiosk_id for d in demo_kiosks()]
    # Retired kiosks neither.
    Kiosk.objects.filter(kiosk_id="K-DEMO-4").update(status=Kiosk.Status.RETIRED)
    assert client.get(URL, {"demo_kiosk": "K-DEMO-4"}).status_code == 404


def test_in_production_there_is_no_picker_and_the_parameter_is_a_404(client, settings, seeded):
    settings.DEBUG = False
    response = client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert "K-DEMO-1" not in page and 'id="demo-kiosks"' not in page
    assert demo_kiosk_secret("K-DEMO-1") not in page
    assert demo_kiosks() == []
    for kiosk_id in ("K-DEMO-1", "", "anything"):
        assert client.get(URL, {"demo_kiosk": kiosk_id}).status_code == 404


def test_the_page_without_demo_kiosks_is_unchanged_and_queries_nothing(
    client, settings, django_assert_num_queries
):
    settings.DEBUG = False
    with django_assert_num_queries(0):
        response = client.get(URL)
    assert response.status_code == 200
    assert b"pharmacy/kiosk.js" in response.content


# The page's script with a minimal fake DOM: a chosen demo kiosk replaces the stored credential
# and the first heartbeat goes out with it.
SCRIPT_HARNESS = r"""
const fs = require("fs");
const [script, kioskId, secret] = process.argv.slice(2);
const elements = {};
class El {
  constructor(id) {
    Object.assign(this, { id, value: "", textContent: "", innerHTML: "", hidden: false,
      disabled: false, checked: false, open: true, dataset: {}, listeners: {} });
    this.classList = { toggle() {}, contains() { return false; } };
  }
  addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); }
  appendChild() {}
}
const $ = (id) => (elements[id] = elements[id] || new El(id));
$("kiosk").dataset = { api: "/api/v1/kiosk/", demoKioskId: kioskId, demoKioskSecret: secret };
const store = { kioskId: "K-OLD", kioskSecret: "old" };
globalThis.localStorage = { getItem: (k) => (k in store ? store[k] : null), setItem: (k, v) => { store[k] = String(v); } };
globalThis.document = { getElementById: $, querySelectorAll: () => [], createElement: () => new El("") };
globalThis.window = globalThis;
globalThis.setInterval = () => 0;
const calls = [];
globalThis.fetch = async (url, options) => { calls.push({ url, auth: options.headers.Authorization }); return { status: 200, json: async () => ({}) }; };
new Function(fs.readFileSync(script, "utf8"))();
setTimeout(() => console.log(JSON.stringify({ store, calls, id: $("kiosk-id").value, secret: $("kiosk-secret").value })), 50);
"""


def test_the_script_connects_with_the_chosen_demo_kiosk(tmp_path):
    import json
    import shutil
    import subprocess
    from pathlib import Path

    node = shutil.which("node")
    assert node, "Node.js is needed to run the simulator script"
    script = Path(__file__).resolve().parents[2] / "pharmacy/static/pharmacy/kiosk.js"
    harness = tmp_path / "harness.js"
    harness.write_text(SCRIPT_HARNESS, encoding="utf-8")
    done = subprocess.run(
        [node, str(harness), str(script), "K-DEMO-1", "s3cret"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["store"] == {"kioskId": "K-DEMO-1", "kioskSecret": "s3cret"}
    assert (out["id"], out["secret"]) == ("K-DEMO-1", "s3cret")
    assert out["calls"][0] == {"url": "/api/v1/kiosk/heartbeat/", "auth": "Kiosk K-DEMO-1:s3cret"}
