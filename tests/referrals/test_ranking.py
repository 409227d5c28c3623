"""Ranking: hand-checked distances between real places, specialty mapping, widening radius."""

from __future__ import annotations

import math

import pytest
from geopy.distance import geodesic

from config.errors import InvalidInput
from referrals import ranking
from tests.referrals.factories import HospitalFactory

SEOUL_CITY_HALL = (37.5663, 126.9779)
BUSAN_STATION = (35.1151, 129.0422)
SNUH = (37.5796, 126.9990)  # 서울대학교병원, Jongno
SEVERANCE = (37.5622, 126.9410)  # 세브란스병원, Sinchon
PNUH = (35.1006, 129.0175)  # 부산대학교병원, Seo-gu
GANGNEUNG = (37.7519, 128.8761)


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """An independent check on geopy: a sphere of the IUGG mean radius."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


@pytest.mark.parametrize(
    ("a", "b", "expected_km"),
    [
        # Hand-checked: geodesic (WGS-84) vs the spherical formula, both within 0.5 %.
        (SEOUL_CITY_HALL, BUSAN_STATION, 329.1),
        (SEOUL_CITY_HALL, SNUH, 2.38),
        (SEOUL_CITY_HALL, SEVERANCE, 3.29),
        (SEOUL_CITY_HALL, GANGNEUNG, 168.7),
    ],
)
def test_geodesic_distance_between_real_places_matches_two_formulas(a, b, expected_km):
    g = geodesic(a, b).km
    assert g == pytest.approx(expected_km, rel=0.005)
    assert haversine_km(a, b) == pytest.approx(g, rel=0.005)


@pytest.mark.parametrize(
    ("findings", "triage", "expected"),
    [
        (["D"], "referable", ["retina"]),
        (["A", "M", "H"], "urgent", ["retina"]),
        (["G"], "referable", ["glaucoma"]),
        (["C"], "referable", ["cataract"]),
        (["O"], "referable", ["general"]),
        (["D", "G", "C"], "urgent", ["retina", "glaucoma", "cataract"]),
        ([], "ungradable", ["general"]),
        (["G"], "ungradable", ["general", "glaucoma"]),
        (["N"], "referable", ["general"]),
    ],
)
def test_required_specialties_follow_findings(findings, triage, expected):
    assert ranking.required_specialties(findings=findings, triage=triage) == expected


@pytest.mark.django_db
def test_candidates_carry_geodesic_distance_and_nearest_ranks_first():
    snuh = HospitalFactory(
        name="서울대학교병원", latitude=SNUH[0], longitude=SNUH[1], specialties=["retina"]
    )
    HospitalFactory(
        name="부산대학교병원", latitude=PNUH[0], longitude=PNUH[1], specialties=["retina"]
    )
    result = ranking.rank_hospitals(
        latitude=SEOUL_CITY_HALL[0],
        longitude=SEOUL_CITY_HALL[1],
        required=["retina"],
        urgent=False,
        k=2,
    )
    assert [c.name for c in result.candidates] == ["서울대학교병원", "부산대학교병원"]
    assert result.candidates[0].hospital_id == snuh.pk
    assert result.candidates[0].distance_km == pytest.approx(2.38, abs=0.02)
    assert result.candidates[1].distance_km == pytest.approx(
        geodesic(SEOUL_CITY_HALL, PNUH).km, abs=0.01
    )
    assert result.candidates[1].distance_km == pytest.approx(329.2, rel=0.005)
    assert haversine_km(SEOUL_CITY_HALL, PNUH) == pytest.approx(329.2, rel=0.005)
    # Two candidates needed, only one within 5 ... 200 km: the radius widened to 400.
    assert result.radius_km == 400.0


@pytest.mark.django_db
def test_radius_stops_widening_once_k_hospitals_are_in_range():
    for _ in range(3):
        HospitalFactory(latitude=SNUH[0], longitude=SNUH[1])
    HospitalFactory(latitude=PNUH[0], longitude=PNUH[1])
    result = ranking.rank_hospitals(
        latitude=SEOUL_CITY_HALL[0],
        longitude=SEOUL_CITY_HALL[1],
        required=["general"],
        urgent=False,
        k=3,
    )
    assert result.radius_km == 5.0  # the first radius already holds 3 hospitals
    assert len(result.candidates) == 3
    assert all(c.distance_km < 5 for c in result.candidates)
    # With a hospital 3.3 km away needed as well as the three at 2.4 km, 5 km still does;
    # asking for 5 widens until Busan (329 km) is in: 400 km.
    HospitalFactory(latitude=SEVERANCE[0], longitude=SEVERANCE[1])
    result = ranking.rank_hospitals(
        latitude=SEOUL_CITY_HALL[0],
        longitude=SEOUL_CITY_HALL[1],
        required=["general"],
        urgent=False,
        k=5,
    )
    assert (result.radius_km, len(result.candidates)) == (400.0, 5)


@pytest.mark.django_db
def test_no_hospital_in_range_is_an_empty_list_with_the_radius_searched():
    HospitalFactory(latitude=PNUH[0], longitude=PNUH[1])  # Busan
    result = ranking.rank_hospitals(
        latitude=30.0, longitude=150.0, required=["general"], urgent=False
    )
    assert result.candidates == []
    assert result.radius_km == 400.0


@pytest.mark.django_db
def test_hospitals_without_coordinates_or_not_accepting_are_never_ranked():
    HospitalFactory(latitude=None, longitude=None)
    HospitalFactory(latitude=SNUH[0], longitude=SNUH[1], accepts_referrals=False)
    ok = HospitalFactory(latitude=SEVERANCE[0], longitude=SEVERANCE[1])
    result = ranking.rank_hospitals(
        latitude=SEOUL_CITY_HALL[0],
        longitude=SEOUL_CITY_HALL[1],
        required=["general"],
        urgent=False,
    )
    assert [c.hospital_id for c in result.candidates] == [ok.pk]


@pytest.mark.django_db
def test_specialty_match_outranks_a_slightly_nearer_general_clinic():
    general = HospitalFactory(latitude=SNUH[0], longitude=SNUH[1], specialties=["general"])
    retina = HospitalFactory(latitude=SEVERANCE[0], longitude=SEVERANCE[1], specialties=["retina"])
    result = ranking.rank_hospitals(
        latitude=SEOUL_CITY_HALL[0], longitude=SEOUL_CITY_HALL[1], required=["retina"], urgent=False
    )
    assert [c.hospital_id for c in result.candidates] == [retina.pk, general.pk]
    assert result.candidates[0].matched == ["retina"]
    assert result.candidates[1].matched == []
    codes = [r["code"] for r in result.candidates[1].reasons]
    assert "specialty_general_cover" in codes


@pytest.mark.django_db
def test_urgent_cases_weigh_open_slots_and_distance_more_than_wait():
    # Near, many open slots but a long wait vs further, no slots and a short wait.
    near_busy = HospitalFactory(
        latitude=SNUH[0], longitude=SNUH[1], open_slots=20, typical_wait_days=30
    )
    far_quick = HospitalFactory(latitude=37.40, longitude=127.10, open_slots=0, typical_wait_days=1)
    routine = ranking.rank_hospitals(
        latitude=SEOUL_CITY_HALL[0],
        longitude=SEOUL_CITY_HALL[1],
        required=["general"],
        urgent=False,
    )
    urgent = ranking.rank_hospitals(
        latitude=SEOUL_CITY_HALL[0], longitude=SEOUL_CITY_HALL[1], required=["general"], urgent=True
    )
    assert urgent.candidates[0].hospital_id == near_busy.pk
    gap_routine = routine.candidates[0].score - routine.candidates[1].score
    by_id = {c.hospital_id: c.score for c in urgent.candidates}
    assert by_id[near_busy.pk] - by_id[far_quick.pk] > abs(gap_routine)
    assert any(r["code"] == "urgent_weights" for r in urgent.candidates[0].reasons)


def test_score_formula_matches_the_documented_example():
    # docs/referrals.md: 10 km, retina needed and present, 2 open slots, 14-day wait, routine.
    terms = ranking.score_terms(
        distance_km=10.0, required=["retina"], has={"retina"}, open_slots=2, typical_wait_days=14
    )
    assert terms == pytest.approx(
        {"distance": 0.75, "specialty": 1.0, "capacity": 0.5, "wait": 0.5}
    )
    assert ranking.score(terms, urgent=False) == pytest.approx(76.25)
    assert ranking.score(terms, urgent=True) == pytest.approx(
        100 * (0.45 * 0.75 + 0.2 + 0.3 * 0.5 + 0.05 * 0.5)
    )
    # The distance term halves at 40 km and reaches 0 at the largest radius (400 km).
    for km, expected in ((0, 1.0), (40, 0.5), (400, 0.0), (1000, 0.0)):
        assert ranking.score_terms(
            distance_km=km, required=["general"], has=set(), open_slots=0, typical_wait_days=0
        )["distance"] == pytest.approx(expected)


@pytest.mark.django_db
def test_a_near_hospital_beats_a_far_one_with_more_slots_for_an_urgent_rural_patient():
    # Yanggu (rural Gangwon): Kangwon University Hospital in Chuncheon 34 km with 4 slots vs a big
    # Seoul eye hospital 116 km away with 30.
    chuncheon = HospitalFactory(
        latitude=37.8700,
        longitude=127.7440,
        specialties=["retina"],
        open_slots=4,
        typical_wait_days=9,
    )
    HospitalFactory(
        latitude=37.5190,
        longitude=126.9050,
        specialties=["retina"],
        open_slots=30,
        typical_wait_days=7,
    )
    result = ranking.rank_hospitals(
        latitude=38.1100, longitude=127.9900, required=["retina"], urgent=True
    )
    assert result.candidates[0].hospital_id == chuncheon.pk
    assert result.candidates[0].distance_km == pytest.approx(34.3, abs=0.2)


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        ("nan", "127"),
        ("37", "inf"),
        ("-Infinity", "127"),
        ("91", "127"),
        ("37", "-180.5"),
        ("abc", "127"),
        (None, "127"),
        ("", ""),
        (True, 127),
    ],
)
def test_bad_coordinates_are_rejected_with_a_clear_error(lat, lon):
    with pytest.raises(InvalidInput) as err:
        ranking.validate_coordinates(lat, lon)
    assert err.value.field in {"latitude", "longitude"}


def test_reasons_render_in_korean_and_english():
    from django.utils import translation

    reason = {"code": "distance", "params": {"km": 2.4}}
    with translation.override("en"):
        assert ranking.reason_text(reason) == "2.4 km away"
    with translation.override("ko"):
        assert "2.4" in ranking.reason_text(reason)
