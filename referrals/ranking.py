"""Rank hospitals for a referral: distance, specialty match, capacity, wait and urgency.

The formula is documented in docs/referrals.md; keep the two in step. Everything here is a read.

Scale: a bounding box on the indexed (latitude, longitude) prefilters in PostgreSQL, which also
orders the hits by a cheap equirectangular distance and keeps the nearest ``SURVIVOR_CAP``; those
are scored with a spherical distance, and the best few get the exact (~40 us each, far more on a
busy machine) WGS-84 geodesic and their final score. The radius widens while fewer than ``k``
hospitals lie within it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import F, FloatField, OuterRef, Q, Value
from django.db.models.functions import Cast
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from geopy.distance import geodesic

from config.errors import InvalidInput
from referrals.models import Hospital, SpecialtyCode

# Start small: in a city a 5 km circle already holds plenty of eye clinics, and a small box is
# what keeps the SQL cheap on a large registry; rural origins widen in a few cheap steps.
RADII_KM = (5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0)
DEFAULT_K = 5
SURVIVOR_CAP = 200  # nearest hospitals (by equirectangular distance) that get scored
SHORTLIST_FACTOR = 2  # the best 2k by provisional score get the exact geodesic
SHORTLIST_MIN = 10
SPHERE_TOLERANCE = 0.005
EARTH_MEAN_RADIUS_KM = 6371.0088
KM_PER_DEGREE_LAT = 111.32  # a safe upper bound for the box: it must contain the circle

FINDING_SPECIALTIES = {
    "D": SpecialtyCode.RETINA,
    "A": SpecialtyCode.RETINA,
    "M": SpecialtyCode.RETINA,
    "H": SpecialtyCode.RETINA,
    "G": SpecialtyCode.GLAUCOMA,
    "C": SpecialtyCode.CATARACT,
    "O": SpecialtyCode.GENERAL,
}

# Weights per urgency (each term is in [0, 1]; the score is 100 * the weighted sum).
WEIGHTS = {
    "routine": {"distance": 0.35, "specialty": 0.35, "capacity": 0.15, "wait": 0.15},
    # Urgent: getting there soon matters more than the perfect sub-specialist.
    "urgent": {"distance": 0.45, "specialty": 0.20, "capacity": 0.30, "wait": 0.05},
}
# Distance on a log scale: each doubling of the trip costs about the same, near or far (10 km vs
# 20 km matters as much as 150 vs 300 km to a patient without a car). 1 at the door, 0.75 at
# 10 km, 0.5 at 40 km, 0 at the largest radius.
DISTANCE_SCALE_KM = 5.0
SLOTS_HALF = 2.0  # capacity term is 0.5 with 2 open slots: a few free slots is what matters
WAIT_HALF_DAYS = 14.0  # wait term is 0.5 at this typical wait
GENERAL_PARTIAL = 0.5  # general ophthalmology covers a missing sub-specialty at half credit


def required_specialties(*, findings: list[str], triage: str) -> list[str]:
    """The specialties a screening needs, in a stable order (retina, glaucoma, cataract, general)."""
    needed: set[str] = {FINDING_SPECIALTIES[f].value for f in findings if f in FINDING_SPECIALTIES}
    if triage == "ungradable" or not needed:
        needed.add(SpecialtyCode.GENERAL.value)
    order = [c.value for c in SpecialtyCode]
    return sorted(needed, key=order.index)


def validate_coordinates(
    latitude: Any, longitude: Any, *, field_prefix: str = ""
) -> tuple[float, float]:
    """Return floats or raise InvalidInput: numbers only, finite, within WGS-84 ranges."""
    result = []
    for name, value, limit in (("latitude", latitude, 90.0), ("longitude", longitude, 180.0)):
        label = f"{field_prefix}{name}"
        if value is None or value == "" or isinstance(value, bool):
            raise InvalidInput(
                _("%(field)s is required.") % {"field": label},
                field=label,
                code="missing_coordinates",
            )
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(
                _("%(field)s must be a number.") % {"field": label}, field=label
            ) from None
        if not math.isfinite(number):
            raise InvalidInput(
                _("%(field)s must be a finite number.") % {"field": label}, field=label
            )
        if not -limit <= number <= limit:
            raise InvalidInput(
                _("%(field)s must be between -%(limit)s and %(limit)s.")
                % {"field": label, "limit": int(limit)},
                field=label,
            )
        result.append(number)
    return result[0], result[1]


@dataclass
class Candidate:
    hospital_id: int
    name: str
    name_en: str
    address: str
    phone: str
    latitude: float
    longitude: float
    is_partner: bool
    open_slots: int
    weekly_capacity: int
    typical_wait_days: int
    distance_km: float
    specialties: list[str]  # all of the hospital's specialty codes
    matched: list[str]  # the required ones it has
    score: float
    reasons: list[dict] = field(default_factory=list)

    def snapshot(self, rank: int) -> dict:
        """What a referral stores: enough to show the candidate and re-route to it later."""
        return {
            "rank": rank,
            "hospital_id": self.hospital_id,
            "name": self.name,
            "name_en": self.name_en,
            "address": self.address,
            "phone": self.phone,
            "is_partner": self.is_partner,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "distance_km": self.distance_km,
            "specialties": self.matched,
            "score": self.score,
            "reasons": self.reasons,
        }


@dataclass
class RankingResult:
    origin: tuple[float, float]
    radius_km: float
    required: list[str]
    urgent: bool
    candidates: list[Candidate]


def _box(lat: float, lon: float, radius_km: float) -> Q:
    dlat = radius_km / KM_PER_DEGREE_LAT
    cos_lat = math.cos(math.radians(min(abs(lat) + dlat, 89.9)))
    dlon = min(radius_km / (KM_PER_DEGREE_LAT * cos_lat), 180.0)
    query = Q(latitude__gte=max(lat - dlat, -90.0), latitude__lte=min(lat + dlat, 90.0))
    lo, hi = lon - dlon, lon + dlon
    if dlon >= 180.0:
        return query
    if lo < -180.0:  # the box crosses the antimeridian: two longitude ranges
        return query & (Q(longitude__gte=lo + 360.0) | Q(longitude__lte=hi))
    if hi > 180.0:
        return query & (Q(longitude__gte=lo) | Q(longitude__lte=hi - 360.0))
    return query & Q(longitude__gte=lo, longitude__lte=hi)


HOSPITAL_COLUMNS = (
    "id",
    "name",
    "name_en",
    "address",
    "phone",
    "latitude",
    "longitude",
    "is_partner",
    "open_slots",
    "weekly_capacity",
    "typical_wait_days",
)


def _nearest_in_box(lat: float, lon: float, radius_km: float, cap: int) -> list[dict]:
    """The ``cap`` rankable hospitals nearest the origin inside the radius's bounding box, with
    their ranked columns and specialty codes, in one round trip.

    The inner query reads only columns of the partial index ``hospital_rankable_latlon``, so
    PostgreSQL picks the nearest ``cap`` with an index-only scan and a top-N sort, however many
    hospitals a dense city's box holds; the table (and the specialty subquery) is then read by
    primary key for those ``cap`` rows only."""
    cos0 = math.cos(math.radians(lat))
    # Squared equirectangular distance in degrees: only used to order within the box.
    dlat = F("latitude") - Value(lat)
    dlon = (F("longitude") - Value(lon)) * Value(cos0)
    approx = Cast(dlat * dlat + dlon * dlon, FloatField())
    nearest = (
        Hospital.objects.filter(_box(lat, lon, radius_km), accepts_referrals=True)
        .filter(latitude__isnull=False, longitude__isnull=False)
        .annotate(approx=approx)
        .order_by("approx")
        .values("id")[:cap]
    )
    through = Hospital.specialties.through.objects
    if connection.vendor != "postgresql":
        # SQLite (the bare-machine `make run`) has no ARRAY subquery: a second query instead.
        rows = list(
            Hospital.objects.filter(pk__in=[r["id"] for r in nearest])
            .order_by()
            .values(*HOSPITAL_COLUMNS)
        )
        codes_by_id: dict[int, list[str]] = {}
        for hid, code in through.filter(hospital_id__in=[r["id"] for r in rows]).values_list(
            "hospital_id", "specialty__code"
        ):
            codes_by_id.setdefault(hid, []).append(code)
        for row in rows:
            row["specialty_codes"] = codes_by_id.get(row["id"], [])
        return rows
    codes = through.filter(hospital_id=OuterRef("pk")).values("specialty__code")
    return list(
        Hospital.objects.filter(pk__in=nearest)
        .order_by()  # no sort by name: the caller orders by distance and score
        .annotate(specialty_codes=ArraySubquery(codes))
        .values(*HOSPITAL_COLUMNS, "specialty_codes")
    )


def spherical_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine on the IUGG mean-radius sphere: within 0.5 % of the geodesic, ~50x cheaper."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_MEAN_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def score_terms(
    *,
    distance_km: float,
    required: list[str],
    has: set[str],
    open_slots: int,
    typical_wait_days: int,
) -> dict[str, float]:
    matched = [c for c in required if c in has]
    covered: float = len(matched)
    if covered < len(required) and SpecialtyCode.GENERAL in has:
        covered += GENERAL_PARTIAL * (len(required) - covered)
    return {
        "distance": max(
            0.0,
            1.0
            - math.log1p(distance_km / DISTANCE_SCALE_KM)
            / math.log1p(RADII_KM[-1] / DISTANCE_SCALE_KM),
        ),
        "specialty": covered / len(required) if required else 1.0,
        "capacity": open_slots / (open_slots + SLOTS_HALF),
        "wait": 1.0 / (1.0 + typical_wait_days / WAIT_HALF_DAYS),
    }


def score(terms: dict[str, float], *, urgent: bool) -> float:
    weights = WEIGHTS["urgent" if urgent else "routine"]
    return round(100.0 * sum(weights[k] * terms[k] for k in weights), 2)


def _reasons(
    *,
    distance_km: float,
    required: list[str],
    has: set[str],
    open_slots: int,
    wait: int,
    urgent: bool,
    is_partner: bool,
) -> list[dict]:
    reasons: list[dict] = [{"code": "distance", "params": {"km": round(distance_km, 1)}}]
    matched = [c for c in required if c in has]
    missing = [c for c in required if c not in has]
    if matched:
        reasons.append({"code": "specialty_match", "params": {"specialties": matched}})
    if missing:
        code = "specialty_general_cover" if SpecialtyCode.GENERAL in has else "specialty_missing"
        reasons.append({"code": code, "params": {"specialties": missing}})
    reasons.append(
        {"code": "open_slots" if open_slots else "no_open_slots", "params": {"n": open_slots}}
    )
    reasons.append({"code": "wait", "params": {"days": wait}})
    if is_partner:
        reasons.append({"code": "partner", "params": {}})
    if urgent:
        reasons.append({"code": "urgent_weights", "params": {}})
    return reasons


def specialty_label(code: str) -> str:
    try:
        return str(SpecialtyCode(code).label)
    except ValueError:
        return code


def reason_text(reason: dict) -> str:
    """Render one stored reason in the active language."""
    code, p = reason.get("code"), reason.get("params", {})
    names = ", ".join(specialty_label(c) for c in p.get("specialties", []))
    if code == "distance":
        return _("%(km)s km away") % {"km": p.get("km")}
    if code == "specialty_match":
        return _("Has the needed specialty: %(names)s") % {"names": names}
    if code == "specialty_general_cover":
        return _("No %(names)s service; general ophthalmology instead") % {"names": names}
    if code == "specialty_missing":
        return _("Lacks the needed specialty: %(names)s") % {"names": names}
    if code == "open_slots":
        n = p.get("n", 0)
        return ngettext("%(n)d open slot this week", "%(n)d open slots this week", n) % {"n": n}
    if code == "no_open_slots":
        return _("No open slots this week")
    if code == "wait":
        days = p.get("days", 0)
        return ngettext("Typical wait %(days)d day", "Typical wait %(days)d days", days) % {
            "days": days
        }
    if code == "partner":
        return _("Partner hospital")
    if code == "urgent_weights":
        return _("Urgent: distance and open slots weigh more")
    return str(code)


def rank_hospitals(
    *,
    latitude: float,
    longitude: float,
    required: list[str],
    urgent: bool,
    k: int = DEFAULT_K,
    radii: tuple[float, ...] = RADII_KM,
    exclude_ids: frozenset[int] = frozenset(),
) -> RankingResult:
    """The top ``k`` hospitals by score among those within the smallest radius that holds ``k``.

    The funnel: box in SQL -> nearest ``SURVIVOR_CAP`` by equirectangular distance (SQL) ->
    spherical distance for the radius test and a provisional score -> exact WGS-84 geodesic
    (geopy) for the best ``SHORTLIST_FACTOR * k``, re-scored and re-sorted. Every distance a
    candidate shows is the geodesic one. No hospital within the largest radius is not an error:
    the result is empty and ``radius_km`` says how far we looked."""
    lat, lon = validate_coordinates(latitude, longitude)
    if not required:
        raise InvalidInput(_("At least one specialty is required."), field="specialties")
    origin = (lat, lon)
    survivors: list = []
    radius = radii[-1]
    for radius in radii:
        survivors = []
        for row in _nearest_in_box(lat, lon, radius, SURVIVOR_CAP):
            d = spherical_km(lat, lon, row["latitude"], row["longitude"])
            # The tolerance covers sphere vs ellipsoid; the exact test comes after the geodesic.
            if d <= radius * (1 + SPHERE_TOLERANCE) and row["id"] not in exclude_ids:
                survivors.append((row, d))
        if len(survivors) >= k:
            break
    specialties = {row["id"]: set(row["specialty_codes"]) for row, _d in survivors}

    def provisional(item: tuple[dict, float]) -> tuple:
        row, d = item
        terms = score_terms(
            distance_km=d,
            required=required,
            has=specialties.get(row["id"], set()),
            open_slots=row["open_slots"],
            typical_wait_days=row["typical_wait_days"],
        )
        return (-score(terms, urgent=urgent), d, row["id"])

    shortlist = sorted(survivors, key=provisional)[: max(SHORTLIST_MIN, SHORTLIST_FACTOR * k)]
    candidates = []
    for row, _d in shortlist:
        d = geodesic(origin, (row["latitude"], row["longitude"])).km
        if d > radius:
            continue
        has = specialties.get(row["id"], set())
        terms = score_terms(
            distance_km=d,
            required=required,
            has=has,
            open_slots=row["open_slots"],
            typical_wait_days=row["typical_wait_days"],
        )
        candidates.append(
            Candidate(
                hospital_id=row["id"],
                name=row["name"],
                name_en=row["name_en"],
                address=row["address"],
                phone=row["phone"],
                latitude=row["latitude"],
                longitude=row["longitude"],
                is_partner=row["is_partner"],
                open_slots=row["open_slots"],
                weekly_capacity=row["weekly_capacity"],
                typical_wait_days=row["typical_wait_days"],
                distance_km=round(d, 2),
                specialties=sorted(has),
                matched=[c for c in required if c in has],
                score=score(terms, urgent=urgent),
                reasons=_reasons(
                    distance_km=d,
                    required=required,
                    has=has,
                    open_slots=row["open_slots"],
                    wait=row["typical_wait_days"],
                    urgent=urgent,
                    is_partner=row["is_partner"],
                ),
            )
        )
    # Ties broken by distance, then id, so the order is stable between calls.
    candidates.sort(key=lambda c: (-c.score, c.distance_km, c.hospital_id))
    return RankingResult(
        origin=origin, radius_km=radius, required=required, urgent=urgent, candidates=candidates[:k]
    )
