"""Reads for referrals, already scoped to the user's organisation.

Health workers see the referrals of their site's screenings, hospital staff those sent to their
hospital, platform admins everything; anyone else sees nothing (a 404, never a 403 that would
confirm the object exists)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import Role
from config.errors import InvalidInput, NotFound
from referrals import ranking
from referrals.models import (
    AT_HOSPITAL_STATUSES,
    HOSPITAL_VISIBLE_STATUSES,
    Hospital,
    Referral,
    ReferralEvent,
    Specialty,
)
from screening.models import Screening, Triage


def user_site_id(user) -> int | None:
    if not user.is_authenticated or user.role != Role.HEALTH_WORKER:
        return None
    membership = getattr(user, "site_membership", None)
    return membership.site_id if membership else None


def user_hospital_id(user) -> int | None:
    if not user.is_authenticated or user.role != Role.HOSPITAL_STAFF:
        return None
    membership = getattr(user, "hospital_membership", None)
    return membership.hospital_id if membership else None


def referrals_for_user(*, user) -> QuerySet[Referral]:
    qs = Referral.objects.select_related("hospital", "screening__patient", "screening__site")
    if not user.is_authenticated:
        return qs.none()
    if user.is_platform_admin:
        return qs
    site_id = user_site_id(user)
    if site_id is not None:
        return qs.filter(screening__site_id=site_id)
    hospital_id = user_hospital_id(user)
    if hospital_id is not None:
        # A hospital sees a referral only while it is the addressee: one re-routed by escalation
        # or re-sent elsewhere after a decline leaves its inbox (the hospital changes).
        return qs.filter(hospital_id=hospital_id, status__in=HOSPITAL_VISIBLE_STATUSES)
    return qs.none()


def referral_get_for_user(*, user, referral_id: int) -> Referral:
    try:
        return referrals_for_user(user=user).get(pk=referral_id)
    except Referral.DoesNotExist:
        raise NotFound(_("Referral not found.")) from None


def referral_events(*, referral: Referral) -> QuerySet[ReferralEvent]:
    return referral.events.select_related("actor", "hospital").order_by("created_at", "id")


def screenings_for_health_worker(*, user) -> QuerySet[Screening]:
    if user.is_authenticated and user.is_platform_admin:
        return Screening.objects.all()
    site_id = user_site_id(user)
    if site_id is None:
        return Screening.objects.none()
    return Screening.objects.filter(site_id=site_id)


def screening_get_for_health_worker(*, user, screening_id: int) -> Screening:
    try:
        return (
            screenings_for_health_worker(user=user)
            .select_related("patient", "site")
            .get(pk=screening_id)
        )
    except Screening.DoesNotExist:
        raise NotFound(_("Screening not found.")) from None


def hospital_can_view_screening(*, user, screening_id: int) -> bool:
    """True when the user is staff of a hospital that a referral for this screening is (or was,
    once completed) addressed to: that hospital may see the images, heatmaps and findings."""
    hospital_id = user_hospital_id(user)
    if hospital_id is None:
        return False
    return Referral.objects.filter(
        screening_id=screening_id, hospital_id=hospital_id, status__in=AT_HOSPITAL_STATUSES
    ).exists()


def referral_for_screening(*, screening: Screening) -> Referral | None:
    """The referral to show for a screening: the active one, else the latest. Uses a prefetched
    ``screening.referrals`` when the caller has one (the worklist), so rows cost no query."""
    referrals = list(screening.referrals.all())
    if not referrals:
        return None
    referrals.sort(key=lambda r: (r.is_active, r.created_at, r.pk), reverse=True)
    return referrals[0]


def referral_origin(*, screening: Screening) -> tuple[float, float, str] | None:
    """Where the patient travels from: home if known, else the screening site."""
    patient = screening.patient
    if patient.home_latitude is not None and patient.home_longitude is not None:
        return patient.home_latitude, patient.home_longitude, Referral.Origin.HOME
    site = screening.site
    if site.latitude is not None and site.longitude is not None:
        return site.latitude, site.longitude, Referral.Origin.SITE
    return None


def screening_urgent(screening: Screening) -> bool:
    return screening.triage == Triage.URGENT


def known_specialty_codes() -> set[str]:
    return set(Specialty.objects.values_list("code", flat=True)) | set(ranking.SpecialtyCode.values)


def parse_specialties(raw: str | list[str]) -> list[str]:
    codes = raw if isinstance(raw, list) else [c.strip() for c in raw.split(",")]
    codes = [c for c in codes if c]
    if not codes:
        raise InvalidInput(_("At least one specialty is required."), field="specialties")
    unknown = sorted(set(codes) - known_specialty_codes())
    if unknown:
        raise InvalidInput(
            _("Unknown specialty: %(codes)s") % {"codes": ", ".join(unknown)},
            field="specialties",
            code="unknown_specialty",
        )
    return list(dict.fromkeys(codes))


def referral_candidates_for_screening(
    *,
    user,
    screening_id: int,
    latitude=None,
    longitude=None,
    specialties: str | None = None,
    k: int = ranking.DEFAULT_K,
) -> tuple[ranking.RankingResult, str]:
    """Rank hospitals for a screening the health worker can see. Coordinates and specialties may
    be overridden (a patient staying elsewhere); both coordinates or neither."""
    screening = screening_get_for_health_worker(user=user, screening_id=screening_id)
    if latitude is not None or longitude is not None:
        lat, lon = ranking.validate_coordinates(latitude, longitude)
        source = "override"
    else:
        origin = referral_origin(screening=screening)
        if origin is None:
            raise InvalidInput(
                _(
                    "Neither the patient's home nor the screening site has coordinates; "
                    "add them or pass latitude and longitude."
                ),
                field="latitude",
                code="no_origin",
            )
        lat, lon, source = origin
    required = (
        parse_specialties(specialties)
        if specialties is not None
        else ranking.required_specialties(
            findings=screening.findings or [], triage=screening.triage
        )
    )
    result = ranking.rank_hospitals(
        latitude=lat, longitude=lon, required=required, urgent=screening_urgent(screening), k=k
    )
    return result, source


def hospitals_without_coordinates() -> QuerySet[Hospital]:
    return Hospital.objects.filter(latitude__isnull=True)
