"""Portal pages: the hospital inbox, the referral page, the panel and badge tags."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template import Context, Template
from django.utils import timezone

from referrals import services
from referrals.models import ReferralStatus
from screening import extensions
from tests.extension_helpers import render_registered
from tests.factories import HealthWorkerFactory, ScreeningFactory, SiteFactory
from tests.referrals.factories import HospitalFactory, HospitalStaffFactory, ReferralFactory

pytestmark = pytest.mark.django_db
S = ReferralStatus


def test_inbox_lists_only_the_staff_members_hospital(client):
    hospital = HospitalFactory()
    mine = ReferralFactory(hospital=hospital)
    other = ReferralFactory()
    client.force_login(HospitalStaffFactory(hospital=hospital))
    response = client.get("/referrals/")
    assert response.status_code == 200
    assert mine.screening.patient.pseudonym in response.content.decode()
    assert other.screening.patient.pseudonym not in response.content.decode()
    assert client.get(f"/referrals/{other.pk}/").status_code == 404


def test_inbox_cells_carry_their_column_heading_for_the_stacked_phone_layout(client):
    """On a phone the inbox rows stack and the headings are hidden: each cell but the patient's
    names its column, so "—" and two bare dates say which is the appointment."""
    import re

    hospital = HospitalFactory()
    ReferralFactory(hospital=hospital)
    client.force_login(HospitalStaffFactory(hospital=hospital, preferred_language="ko"))
    page = client.get("/referrals/").content.decode()
    headings = re.findall(r"<th>([^<]+)</th>", page)
    row = re.search(r"<tbody>(.*?)</tr>", page, re.S).group(1)
    labels = re.findall(r'<td data-label="([^"]+)"', row)
    assert len(re.findall(r"<td", row)) == len(headings)
    assert labels == headings[1:] and "예약" in labels


def test_inbox_requires_login(client):
    response = client.get("/referrals/")
    assert response.status_code == 302 and "/accounts/" in response["Location"]


def test_referral_page_for_hospital_shows_findings_and_links_images(client):
    referral = ReferralFactory(
        screening=ScreeningFactory(
            triage="urgent", findings=["D", "G"], reasons=["Severe DR signs"]
        )
    )
    client.force_login(HospitalStaffFactory(hospital=referral.hospital))
    html = client.get(f"/referrals/{referral.pk}/").content.decode()
    assert "Severe DR signs" in html
    assert 'name="appointment_at"' in html and 'name="reason"' in html


def test_hospital_accepts_declines_and_completes_through_forms(client):
    referral = ReferralFactory()
    client.force_login(HospitalStaffFactory(hospital=referral.hospital))
    response = client.post(f"/referrals/{referral.pk}/decline/", {"reason": ""})
    assert response.status_code == 400
    when = (timezone.localtime() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(f"/referrals/{referral.pk}/accept/", {"appointment_at": when})
    assert response.status_code == 302
    referral.refresh_from_db()
    assert referral.status == S.ACCEPTED
    assert timezone.localtime(referral.appointment_at).strftime("%Y-%m-%dT%H:%M") == when
    assert client.post(f"/referrals/{referral.pk}/decline/", {"reason": "late"}).status_code == 409
    client.post(f"/referrals/{referral.pk}/attended/")
    client.post(
        f"/referrals/{referral.pk}/complete/", {"diagnosis": "Glaucoma suspect, OCT normal"}
    )
    referral.refresh_from_db()
    assert referral.status == S.COMPLETED


def test_health_worker_sees_the_map_and_confirms_a_hospital(client):
    near = HospitalFactory(latitude=37.5796, longitude=126.9990, specialties=["retina"])
    screening = ScreeningFactory(triage="referable", findings=["D"])
    referral = services.referral_propose_for_screening(screening_id=screening.pk)
    client.force_login(screening.health_worker)
    html = client.get(f"/referrals/{referral.pk}/").content.decode()
    assert "referrals/leaflet/leaflet.js" in html and 'id="ref-map-data"' in html
    assert 'name="hospital"' in html
    response = client.post(f"/referrals/{referral.pk}/send/", {"hospital": near.pk}, follow=True)
    assert response.redirect_chain and response.redirect_chain[0][1] == 302
    referral.refresh_from_db()
    assert referral.status == S.SENT and referral.hospital == near
    # The page says where the referral went and what happens next, not just "saved".
    sent = [str(m) for m in response.context["messages"]]
    assert any(near.name in m and "48" in m for m in sent), sent
    html = response.content.decode()
    assert html.count(f"{near.name}</strong>") >= 1 and f"1. {near.name}" not in html


def test_other_sites_health_worker_gets_404(client):
    referral = ReferralFactory()
    client.force_login(HealthWorkerFactory(site=SiteFactory()))
    assert client.get(f"/referrals/{referral.pk}/").status_code == 404
    assert client.post(f"/referrals/{referral.pk}/cancel/").status_code == 404
    referral.refresh_from_db()
    assert referral.status == S.SENT


def test_hospital_can_view_screening_selector():
    from referrals.selectors import hospital_can_view_screening

    referral = ReferralFactory()
    staff = HospitalStaffFactory(hospital=referral.hospital)
    assert hospital_can_view_screening(user=staff, screening_id=referral.screening_id)
    assert not hospital_can_view_screening(
        user=HospitalStaffFactory(), screening_id=referral.screening_id
    )
    assert not hospital_can_view_screening(
        user=referral.screening.health_worker, screening_id=referral.screening_id
    )


def test_panel_and_badge_render_status_candidates_and_history():
    HospitalFactory(
        name="서울대학교병원", latitude=37.5796, longitude=126.9990, specialties=["retina"]
    )
    screening = ScreeningFactory(triage="referable", findings=["D"])
    services.referral_propose_for_screening(screening_id=screening.pk)
    from django.utils import translation

    with translation.override("en"):
        html = render_registered(extensions.panels(), "referrals", screening)
        badge = render_registered(extensions.worklist_badges(), "referrals", screening)
    assert "서울대학교병원" in html and "Proposed" in html and "km" in html
    assert "/referrals/" in html
    assert "Proposed" in badge and "action needed" in badge


def test_panel_for_a_screening_without_referral():
    screening = ScreeningFactory(triage="normal")
    html = render_registered(extensions.panels(), "referrals", screening)
    assert "ref-panel" in html


def test_badges_on_a_prefetched_worklist_cost_no_queries(django_assert_num_queries):
    from screening.models import Screening

    for _ in range(3):
        ReferralFactory()
    screenings = list(Screening.objects.prefetch_related(*extensions.worklist_prefetches()))
    template = Template(
        "{% load screening_extensions %}{% for s in screenings %}{% worklist_badges s %}{% endfor %}"
    )
    with django_assert_num_queries(0):
        html = template.render(Context({"screenings": screenings}))
    assert html.count("ref-badge") == 3


def test_screening_result_page_and_worklist_show_the_referral(client):
    HospitalFactory(
        name="서울대학교병원", latitude=37.5796, longitude=126.9990, specialties=["retina"]
    )
    screening = ScreeningFactory(triage="referable", findings=["D"])
    referral = services.referral_propose_for_screening(screening_id=screening.pk)
    client.force_login(screening.health_worker)
    page = client.get(f"/screening/screenings/{screening.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "ref-panel" in html and "서울대학교병원" in html and f"/referrals/{referral.pk}/" in html
    worklist = client.get("/screening/").content.decode()
    assert "ref-badge" in worklist


def test_admin_referral_page_shows_the_history_inline(client):
    from tests.factories import AdminFactory

    referral = ReferralFactory()
    staff = HospitalStaffFactory(hospital=referral.hospital)
    services.referral_decline(user=staff, referral_id=referral.pk, reason="No retina clinic")
    client.force_login(AdminFactory())
    html = client.get(f"/admin/referrals/referral/{referral.pk}/change/").content.decode()
    assert "No retina clinic" in html


def test_inbox_query_count_does_not_grow_with_rows(client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from referrals.models import Referral

    hospital = HospitalFactory()
    client.force_login(HospitalStaffFactory(hospital=hospital))
    client.get("/referrals/")  # the first request of a session does its own bookkeeping
    counts = []
    for rows in (1, 6):
        while Referral.objects.count() < rows:
            ReferralFactory(hospital=hospital)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/referrals/?show=all").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
