"""The journeys of the two roles that run the programme rather than the clinic (issue 16.6), in
Debian's Chromium, in Korean on a phone and in English on a desktop:

* public health: the dashboard's filters narrow the figures, and the CSV export downloads what
  the page shows, with the filters in its first rows;
* the administrator: imports partner hospitals from a CSV (a wrong file imports nothing and says
  which row is wrong), registers a kiosk (its secret shown once, only its hash stored) and changes
  a triage rule that the next screening then uses.

Screenshots go to build/e2e-screenshots/<lang>-<viewport>-staff/.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.utils import timezone

from tests.e2e.test_browser_journeys import (
    axe_problems,
    catalogue,
    demo,  # noqa: F401 - the fixture, used by name
    new_page,
    sign_in,
    untranslated,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSPITALS_CSV = (
    "name,name_en,address,latitude,longitude,phone,is_partner,accepts_referrals,"
    "weekly_capacity,open_slots,typical_wait_days,specialties\n"
    "영월안과의원,Yeongwol Eye Clinic,강원 영월군 영월읍,37.1836,128.4617,033-370-0000,true,true,"
    "20,5,3,general;retina\n"
)
BAD_CSV = "name,latitude,longitude\n평창안과,91.5,128.39\n"


def _text(lang: str, msgid: str) -> str:
    return catalogue()[msgid] if lang == "ko" else msgid


def _screenings_today(count: int, triage: str) -> None:
    """Finished screenings at a site in one of public health's regions (강원)."""
    from screening.models import Site
    from tests.factories import HealthWorkerFactory, ScreeningFactory

    site = Site.objects.filter(region__startswith="강원").order_by("id").first()
    assert site is not None, "the demo has a 강원 site"
    worker = HealthWorkerFactory(site=site)
    for _ in range(count):
        ScreeningFactory(
            patient__site=site, health_worker=worker, triage=triage, completed_at=timezone.now()
        )


@pytest.mark.parametrize(("lang", "viewport"), [("ko", "phone"), ("en", "desktop")])
def test_public_health_filters_the_dashboard_and_exports_it(
    lang,
    viewport,
    chromium,
    live_server,
    demo,  # noqa: F811 - the imported fixture
    shots,
):
    from screening.models import Site

    _screenings_today(3, "normal")
    _screenings_today(2, "referable")
    other = (
        Site.objects.exclude(region__startswith="강원").filter(region__startswith="전남").first()
    )
    shot = shots(lang, f"{viewport}-staff")
    page = new_page(chromium, live_server, viewport)
    page.context.set_default_timeout(30_000)
    sign_in(page, "publichealth", lang, next_url="/dashboard/")
    assert page.evaluate("document.documentElement.lang") == lang
    assert untranslated(page, lang) == []
    shot(page, "dashboard")
    assert axe_problems(page) == []

    # Narrow to 강원 and today: the figures are the five screenings made above.
    today = timezone.localdate().isoformat()
    page.fill("#f-date-from", today)
    page.fill("#f-date-to", today)
    page.select_option("#f-region", "강원")
    with page.expect_navigation():
        page.click("form.dash-filters button[type=submit]")
    assert "region=" in page.url and f"date_from={today}" in page.url
    assert page.locator("#f-region").input_value() == "강원"
    shot(page, "dashboard-filtered")
    assert untranslated(page, lang) == []

    # The export is the filtered view: its first rows name the filters, its counts match.
    with page.expect_download() as download:
        page.click("a[href^='/dashboard/export.csv']")
    path = download.value.path()
    assert download.value.suggested_filename.endswith(".csv")
    with open(path, encoding="utf-8-sig") as handle:
        text = handle.read()
    rows = {(r[0], r[1]): r for r in csv.reader(io.StringIO(text)) if len(r) >= 4}
    assert rows[("filter", "region")][3] == "강원"
    assert rows[("filter", "date_from")][3] == today
    assert rows[("filter", "region")][2] == _text(lang, "Region")
    assert rows[("summary", "screenings")][3] == "5"

    # Another region than theirs is refused with a message, not a 500 and not its data.
    if other is not None:
        page.goto(f"/dashboard/?site={other.pk}&region=%EC%84%9C%EC%9A%B8")
        assert page.locator("[role=alert], .error").count() >= 1
    page.context.close()


@pytest.mark.parametrize(("lang", "viewport"), [("ko", "phone"), ("en", "desktop")])
def test_the_administrator_maintains_hospitals_kiosks_and_triage_rules(
    lang,
    viewport,
    chromium,
    live_server,
    demo,  # noqa: F811 - the imported fixture
    shots,
    tmp_path,
):
    from pharmacy.models import Kiosk, Pharmacy
    from referrals.imports import IMPORT_COLUMNS
    from referrals.models import Hospital
    from screening.inference import model_decision
    from screening.models import TriageRule
    from screening.triage import resolve_rules

    shot = shots(lang, f"{viewport}-admin")
    page = new_page(chromium, live_server, viewport)
    page.context.set_default_timeout(30_000)
    sign_in(page, "admin", lang, next_url="/dashboard/")  # the portal header switches language
    page.goto("/admin/")
    assert page.evaluate("document.documentElement.lang") == lang
    shot(page, "admin-home")

    # 1. A wrong hospital file imports nothing and names the row; the right one imports.
    good, bad = tmp_path / "hospitals.csv", tmp_path / "bad.csv"
    good.write_text(HOSPITALS_CSV, encoding="utf-8")
    bad.write_text(BAD_CSV, encoding="utf-8")
    before = Hospital.objects.count()
    page.goto("/admin/referrals/hospital/import-csv/")
    page.set_input_files("input[type=file][name=file]", str(bad))
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert page.locator(".errornote").count() == 1
    assert page.locator("table tbody tr").count() >= 1
    assert Hospital.objects.count() == before
    # Our own admin pages speak the user's language (Django's own admin strings are Django's);
    # the CSV's column names are the file's, shown as they are.
    assert [t for t in untranslated(page, lang) if t not in IMPORT_COLUMNS] == []
    shot(page, "hospital-import-refused")
    page.set_input_files("input[type=file][name=file]", str(good))
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert page.url.rstrip("/").endswith("/admin/referrals/hospital")
    imported = Hospital.objects.get(name="영월안과의원")
    assert imported.latitude == pytest.approx(37.1836) and imported.accepts_referrals
    assert Hospital.objects.count() == before + 1
    shot(page, "hospital-imported")

    # 2. Register a kiosk: the secret is shown once, only its hash is kept.
    pharmacy = Pharmacy.objects.order_by("id").first()
    page.goto("/admin/pharmacy/kiosk/add/")
    page.select_option("#id_pharmacy", str(pharmacy.pk))
    page.fill("#id_name", f"영월 키오스크 {lang}")
    page.fill("#id_location", "영월읍 보건지소 1층")
    with page.expect_navigation():
        page.click("input[name=_save]")
    secret = page.locator("code.kiosk-secret").inner_text().strip()
    kiosk = Kiosk.objects.get(name=f"영월 키오스크 {lang}")
    assert len(secret) >= 20 and secret not in (kiosk.secret_hash or "")
    assert kiosk.pharmacy_id == pharmacy.pk and kiosk.status == Kiosk.Status.ACTIVE
    assert untranslated(page, lang) == []
    shot(page, "kiosk-secret")
    page.goto(f"/admin/pharmacy/kiosk/{kiosk.pk}/change/")
    assert secret not in page.content()  # never shown again

    # 3. Lower the D threshold for everyone; the next triage uses it.
    rule, _ = TriageRule.objects.get_or_create(class_code="D", risk_factor="")
    page.goto(f"/admin/screening/triagerule/{rule.pk}/change/")
    page.fill("#id_threshold", "0.31")
    with page.expect_navigation():
        page.click("input[name=_save]")
    assert re.search(r"/admin/screening/triagerule/$", page.url), page.url
    rule.refresh_from_db()
    assert rule.threshold == pytest.approx(0.31)
    rules = resolve_rules(
        model_thresholds=model_decision(), rule_rows=TriageRule.objects.all(), risk_factors=set()
    )
    assert rules["D"].threshold == pytest.approx(0.31)
    # A value outside (0, 1) is refused by the form, in the page's language, and not saved.
    page.goto(f"/admin/screening/triagerule/{rule.pk}/change/")
    page.fill("#id_threshold", "1.5")
    with page.expect_navigation():
        page.click("input[name=_save]")
    assert page.locator(".errornote, .errorlist").count() >= 1
    rule.refresh_from_db()
    assert rule.threshold == pytest.approx(0.31)
    shot(page, "triage-rule-refused")
    page.context.close()
