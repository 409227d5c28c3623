"""The pharmacist's pages on a phone (390x844), in Korean and in English, in Debian's Chromium,
over the demo's year of history: no page scrolls sideways (the dispense table scrolls in its own
box, the kiosk keypad wraps to the screen), and a prescription's history shows the platform's own
notes in the page's language ("proposed by protocol" was shown in English on Korean pages).
Found by walking every role on a fresh clone."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.utils import translation

from tests.e2e.test_browser_journeys import (
    demo,  # noqa: F401 - the fixture, used by name
    new_page,
    sign_in,
    untranslated,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE_WIDTH = 390
PAGES = [
    "/pharmacy/",
    "/pharmacy/stock/",
    "/pharmacy/dispenses/",
    "/pharmacy/calls/",
    "/pharmacy/kiosk-simulator/",
]


@pytest.fixture
def history(demo):  # noqa: F811 - the imported fixture
    """The demo's past screenings and their prescriptions, decided and dispensed at the kiosks."""
    call_command("seed_demo_history", stdout=io.StringIO())
    call_command("seed_demo_pharmacy", "--history", stdout=io.StringIO())


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_pharmacist_pages_fit_a_phone_and_speak_its_language(
    lang,
    chromium,
    live_server,
    history,
):
    from pharmacy.models import Dispense, Prescription, PrescriptionEvent

    dispensed = Prescription.objects.filter(status=Prescription.Status.DISPENSED).first()
    assert dispensed is not None and Dispense.objects.exists()
    page = new_page(chromium, live_server, "phone")
    sign_in(page, "pharmacist", lang, next_url="/pharmacy/")
    for url in [*PAGES, f"/pharmacy/prescriptions/{dispensed.pk}/"]:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.lang") == lang
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE_WIDTH, (url, width)
        assert untranslated(page, lang) == [], url

    # The last page is the dispensed prescription: its history names each step in the page's
    # language, the rule's proposal included.
    history_text = page.locator("ol").last.inner_text()
    notes = set(
        PrescriptionEvent.objects.filter(prescription=dispensed).values_list("note", flat=True)
    )
    assert PrescriptionEvent.SystemNote.PROPOSED in notes
    with translation.override(lang):
        proposed = str(PrescriptionEvent.SystemNote.PROPOSED.label)
    assert proposed in history_text
    if lang == "ko":
        assert "proposed by protocol" not in history_text
