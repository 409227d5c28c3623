"""The demo tells one story in one region: the demo health worker's referable patients (chw at
정선군보건소, 강원) rank the `hospital` login's hospital first, and their medicine waits at a
kiosk of a pharmacy near 정선; chw2's (신안, 전남) likewise near 신안."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.models import User
from pharmacy.models import Kiosk, PharmacySiteLink
from pharmacy.selectors import pharmacy_for_site
from referrals import ranking
from referrals.models import Referral
from referrals.selectors import referral_origin
from screening.models import Screening, Site
from screening.regions import distance_km

pytestmark = pytest.mark.django_db

REQUIRED = (["retina"], ["glaucoma"], ["cataract"], ["general"], ["retina", "glaucoma"])


@pytest.fixture
def demo():
    call_command("seed_demo", stdout=io.StringIO())
    return User.objects.get(username="chw"), User.objects.get(username="hospital")


def test_chws_referable_patients_rank_the_demo_hospital_first(demo):
    chw, hospital_user = demo
    hospital = hospital_user.hospital_membership.hospital
    site = chw.site_membership.site
    assert site.name == "정선군보건소" and site.region == "강원"
    assert hospital.address.startswith("강원")

    # Every referral of chw's patients in the history: the proposal the ranking made.
    referrals = list(
        Referral.objects.filter(screening__site=site).select_related("screening__patient")
    )
    assert len(referrals) >= 20
    for referral in referrals:
        assert referral.candidates, referral.proposal_note
        assert referral.candidates[0]["hospital_id"] == hospital.pk, referral.candidates[0]
        assert referral.origin_source == Referral.Origin.HOME
    # The hospital login receives them: most were sent there, and it holds some still open.
    at_hospital = [r for r in referrals if r.hospital_id == hospital.pk]
    assert len(at_hospital) >= len(referrals) // 2
    assert {r.status for r in at_hospital} & {"sent", "accepted"}

    # The demo patients registered with the seed (homes at 정선군's point), for whatever a
    # screening finds and however urgent.
    screenings = Screening.objects.filter(site=site).exclude(model_version="demo-history")
    assert screenings.exists()
    for screening in screenings.select_related("patient", "site"):
        lat, lon, source = referral_origin(screening=screening)
        assert source == Referral.Origin.HOME
        for required in REQUIRED:
            for urgent in (False, True):
                top = ranking.rank_hospitals(
                    latitude=lat, longitude=lon, required=required, urgent=urgent
                ).candidates[0]
                assert top.hospital_id == hospital.pk, (required, urgent, top.name)


def test_each_demo_centre_has_a_local_pharmacy_and_kiosk(demo):
    chw, _hospital = demo
    expected = {"정선군보건소": "강원", "신안군보건소": "전남"}
    for name, region in expected.items():
        site = Site.objects.get(name=name)
        pharmacy = pharmacy_for_site(site=site)
        assert pharmacy is not None and pharmacy.region == region
        # The only pharmacy linked to the site: the dashboard's kiosks of a site are its own.
        assert set(
            PharmacySiteLink.objects.filter(site=site).values_list("pharmacy", flat=True)
        ) == {pharmacy.pk}
        kiosks = list(Kiosk.objects.filter(pharmacy=pharmacy))
        assert kiosks
        for kiosk in kiosks:
            assert kiosk.location.startswith(site.address.split()[0])
            assert distance_km(site.latitude, site.longitude, kiosk.latitude, kiosk.longitude) < 40
    # The pharmacist login works at the pharmacy of chw's site.
    pharmacist = User.objects.get(username="pharmacist")
    assert pharmacist.pharmacist_membership.pharmacy == pharmacy_for_site(
        site=chw.site_membership.site
    )
