"""The public-health dashboard on a phone (390x844), in Korean and in English, in Debian's
Chromium: nothing scrolls sideways, every chart fits the screen with today's bar in view, no
label is cut by its chart, and the median and mean time to acceptance read alike. Widened to a
desktop, the same page shows the wide drawings again.

The Korean page is saved as docs/screenshots/dashboard-phone-ko.png.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone, translation
from django.utils.translation import gettext

from tests.conftest import REPO_ROOT
from tests.e2e.test_browser_journeys import (
    axe_problems,
    demo,  # noqa: F401 - the fixture, used by name
    new_page,
    sign_in,
    untranslated,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = REPO_ROOT / "docs" / "screenshots" / "dashboard-phone-ko.png"
PHONE_WIDTH = 390

# What the layout checks read from the page: the page's own width, then per visible chart its
# box, its scroll box, its last bar and the labels that stick out of it (half a pixel of
# anti-aliasing allowed).
LAYOUT_JS = """() => {
  const out = {scrollWidth: document.documentElement.scrollWidth, charts: []};
  for (const svg of document.querySelectorAll('figure.chart svg')) {
    if (!svg.getClientRects().length) continue;
    const box = svg.getBoundingClientRect();
    const scroller = svg.closest('.chart-scroll').getBoundingClientRect();
    const bars = [...svg.querySelectorAll('rect.bar, rect.funnel-step')];
    const last = bars.length ? bars[bars.length - 1].getBoundingClientRect() : null;
    const clipped = [...svg.querySelectorAll('text')].filter((t) => {
      const r = t.getBoundingClientRect();
      return r.width > 0 && (r.left < box.left - 0.5 || r.right > box.right + 0.5
        || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5);
    }).map((t) => t.textContent);
    out.charts.push({
      id: svg.getAttribute('aria-labelledby'), drawing: svg.getAttribute('class'),
      left: box.left, right: box.right, scrollerRight: scroller.right,
      bars: bars.length, lastRight: last && last.right, clipped,
    });
  }
  return out;
}"""


def _referral(screening, hospital, wait_hours: float | None) -> None:
    """A referral sent at the screening's time and, unless wait_hours is None, accepted after."""
    from referrals.models import Referral, ReferralEvent, ReferralStatus

    accepted = wait_hours is not None
    referral = Referral.objects.create(
        screening=screening,
        status=ReferralStatus.ACCEPTED if accepted else ReferralStatus.SENT,
        hospital=hospital,
        urgency="routine",
        appointment_at=screening.created_at + dt.timedelta(days=7) if accepted else None,
    )
    steps = [("sent", "", 0.0)] + ([("accepted", "sent", wait_hours)] if accepted else [])
    for to_status, from_status, hours in steps:
        event = ReferralEvent.objects.create(
            referral=referral,
            kind=to_status,
            from_status=from_status,
            to_status=to_status,
            hospital=hospital,
        )
        ReferralEvent.objects.filter(pk=event.pk).update(
            created_at=screening.created_at + dt.timedelta(hours=hours)
        )


@pytest.fixture
def dashboard_world(demo):  # noqa: F811 - the imported fixture
    """Twelve weeks of screenings at the public-health user's sites, the busiest day today, and
    accepted referrals whose median wait is 0 hours (the mean is not)."""
    from referrals.models import Hospital
    from screening.models import Screening, Site
    from tests.factories import PatientFactory, ScreeningFactory, UserFactory

    sites = list(Site.objects.filter(region__in=["강원", "전남"]).order_by("pk"))
    assert sites, "seed_demo has no sites in the public-health user's regions"
    worker = UserFactory(username="dashboard-e2e-worker")
    patients = [PatientFactory(site=site, region=site.region) for site in sites]
    now = timezone.localtime()
    triages = ["normal", "referable", "medication", "urgent", "ungradable"]
    screenings = []
    for days_ago in range(0, 84, 3):
        for n in range(1 + (days_ago * 7) % 4 + (6 if days_ago == 0 else 0)):
            patient = patients[n % len(patients)]
            s = ScreeningFactory(
                patient=patient,
                site=patient.site,
                health_worker=worker,
                triage=triages[n % len(triages)],
            )
            when = now - dt.timedelta(days=days_ago, minutes=n)
            Screening.objects.filter(pk=s.pk).update(created_at=when)
            s.created_at = when
            screenings.append(s)
    hospital = Hospital.objects.order_by("pk").first()
    for s, wait in zip(screenings[:4], [0, 0, 5, None], strict=True):
        _referral(s, hospital, wait)


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_dashboard_fits_a_phone(lang, chromium, live_server, dashboard_world):
    page = new_page(chromium, live_server, "phone")
    assert page.viewport_size == {"width": PHONE_WIDTH, "height": 844}
    sign_in(page, "publichealth", lang, next_url="/dashboard/")
    assert "/dashboard/" in page.url
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.documentElement.lang") == lang
    assert untranslated(page, lang) == []

    layout = page.evaluate(LAYOUT_JS)
    assert layout["scrollWidth"] <= PHONE_WIDTH, layout
    ids = [chart["id"] for chart in layout["charts"]]
    # The five charts, each drawn once on the screen: its narrow drawing.
    assert len(ids) == 5 and any("chart-day" in i for i in ids), ids
    assert {chart["drawing"] for chart in layout["charts"]} == {"chart-narrow"}
    for chart in layout["charts"]:
        assert chart["left"] >= 0 and chart["right"] <= PHONE_WIDTH, chart
        assert chart["right"] <= chart["scrollerRight"] + 0.5, chart
        assert chart["bars"], chart
        assert chart["lastRight"] <= chart["right"] + 0.5, chart  # today's bar in full
        assert chart["clipped"] == [], chart

    # A median of 0 hours is a value like the mean, not the no-data mark.
    facts = page.locator(".dash-facts dd").all_inner_texts()
    with translation.override(lang):
        hours = gettext("%(n)s hours")
    assert facts[0] == hours % {"n": "0.0"}, facts
    assert facts[1] == hours % {"n": "1.7"}, facts

    if lang == "ko":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert axe_problems(page) == []

    # On a desktop the wide drawings are back, also without a label cut.
    page.set_viewport_size({"width": 1280, "height": 800})
    layout = page.evaluate(LAYOUT_JS)
    assert {chart["drawing"] for chart in layout["charts"]} == {"chart-wide"}, layout
    assert layout["scrollWidth"] <= 1280
    assert all(chart["clipped"] == [] for chart in layout["charts"]), layout
    assert axe_problems(page) == []
    page.context.close()
