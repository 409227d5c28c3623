"""Registering a patient's home by region: the 시/도 and 시/군/구 picker, the coordinates the form
derives from it, the site's default, and the exact coordinates behind "advanced"."""

from __future__ import annotations

import datetime as dt

import pytest

from screening import regions
from screening.forms import PatientForm
from screening.models import Patient
from tests.factories import HealthWorkerFactory, SiteFactory

BASE = {"name": "김순자", "birth_date": "1948-05-02", "sex": "F", "consent_given": "on"}
JEONGSEON = regions.district("51770")


def form(data: dict, **kwargs) -> PatientForm:
    return PatientForm(BASE | data, **kwargs)


def test_the_table_holds_every_si_gun_of_gangwon_and_jeonnam_and_the_demo_regions():
    names = {p.code: {d.name for d in regions.districts_of(p.code)} for p in regions.PROVINCES}
    assert len(names["51"]) == 18 and len(names["46"]) == 22
    assert {"정선군", "춘천시", "강릉시", "양양군"} <= names["51"]
    assert {"신안군", "목포시", "완도군", "해남군"} <= names["46"]
    assert "종로구" in names["11"]
    for d in regions.DISTRICTS:
        assert d.code[:2] == d.province_code and len(d.code) == 5
        assert 33.0 < d.latitude < 38.7 and 124.5 < d.longitude < 131.0, d


def test_a_picked_region_gives_its_coordinates_and_label():
    f = form({"sido": "51", "sigungu": "51770"})
    assert f.is_valid(), f.errors
    assert (f.cleaned_data["home_latitude"], f.cleaned_data["home_longitude"]) == (
        JEONGSEON.latitude,
        JEONGSEON.longitude,
    )
    assert f.cleaned_data["region"] == "강원특별자치도 정선군"
    assert "sido" not in f.cleaned_data and "sigungu" not in f.cleaned_data


def test_the_district_alone_is_enough():
    f = form({"sigungu": "46910"})
    assert f.is_valid(), f.errors
    assert f.cleaned_data["region"] == "전라남도 신안군"


def test_coordinates_far_from_the_picked_region_are_refused_not_used():
    # Seoul for 정선: the page cannot move a home out of the region it names.
    f = form(
        {"sido": "51", "sigungu": "51770", "home_latitude": "37.57", "home_longitude": "126.98"}
    )
    assert not f.is_valid()
    assert "home_latitude" in f.errors


def test_exact_coordinates_within_the_region_are_kept():
    f = form({"sigungu": "51770", "home_latitude": "37.2072", "home_longitude": "128.8494"})
    assert f.is_valid(), f.errors
    assert (f.cleaned_data["home_latitude"], f.cleaned_data["home_longitude"]) == (
        37.2072,
        128.8494,
    )


def test_exact_coordinates_alone_are_used():
    f = form({"home_latitude": "34.68", "home_longitude": "125.43"})
    assert f.is_valid(), f.errors
    assert f.cleaned_data["home_latitude"] == 34.68
    assert not f.cleaned_data.get("region")


@pytest.mark.django_db
def test_nothing_picked_defaults_to_the_site_and_the_site_preselects_its_district():
    site = SiteFactory(region="강원", latitude=37.3807, longitude=128.6609)
    f = form({}, site=site)
    assert f.is_valid(), f.errors
    assert (f.cleaned_data["home_latitude"], f.cleaned_data["home_longitude"]) == (
        37.3807,
        128.6609,
    )
    assert f.cleaned_data["region"] == "강원특별자치도 정선군"
    unbound = PatientForm(site=site)
    assert (unbound["sido"].value(), unbound["sigungu"].value()) == ("51", "51770")
    # Without a site (and nothing picked) the home stays unknown; the referral then starts from
    # the screening site.
    f = form({})
    assert f.is_valid(), f.errors
    assert f.cleaned_data["home_latitude"] is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"sido": "99"}, "sido"),
        ({"sigungu": "99999"}, "sigungu"),
        ({"sigungu": "'; DROP TABLE"}, "sigungu"),
        ({"sido": "46", "sigungu": "51770"}, "sigungu"),  # 정선 is not in 전남
        ({"sido": "51"}, "sigungu"),  # a province without its district
        ({"sigungu": "51770", "home_latitude": "37.3"}, "home_latitude"),  # half a coordinate
        ({"home_latitude": "91", "home_longitude": "1"}, "home_latitude"),
    ],
)
def test_bad_region_input_is_a_form_error(data, field):
    f = form(data)
    assert not f.is_valid()
    assert field in f.errors, f.errors


@pytest.mark.django_db
def test_the_page_offers_the_picker_and_saves_the_derived_home(client):
    hw = HealthWorkerFactory()
    client.force_login(hw)
    page = client.get("/screening/patients/new/").content.decode()
    assert 'name="sido"' in page and 'name="sigungu"' in page
    assert "<details" in page and 'name="home_latitude"' in page
    assert "screening/region_picker.js" in page
    response = client.post("/screening/patients/new/", BASE | {"sido": "51", "sigungu": "51770"})
    assert response.status_code == 302
    patient = Patient.objects.get()
    assert (patient.home_latitude, patient.home_longitude) == (
        JEONGSEON.latitude,
        JEONGSEON.longitude,
    )
    assert patient.region == "강원특별자치도 정선군"
    assert patient.birth_date == dt.date(1948, 5, 2)


@pytest.mark.django_db
def test_a_bad_region_code_is_a_400_with_the_message_and_nothing_is_saved(client):
    client.force_login(HealthWorkerFactory())
    response = client.post(
        "/screening/patients/new/",
        BASE | {"sido": "51", "sigungu": "46910"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert "신안군 is not in 강원특별자치도." in response.content.decode()
    assert not Patient.objects.exists()
