"""Reads, already scoped to what the user may see: another site's patient is simply not found."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from accounts.models import Role, User
from config.errors import NotFound
from screening import extensions
from screening.models import EyeResult, Patient, Screening, ScreeningImage, Site


def user_site(*, user: User) -> Site | None:
    if not user.is_authenticated or user.role != Role.HEALTH_WORKER:
        return None
    membership = getattr(user, "site_membership", None)
    return membership.site if membership is not None else None


def patients_for_user(*, user: User) -> QuerySet[Patient]:
    if user.is_authenticated and user.is_platform_admin:
        return Patient.objects.all()
    site = user_site(user=user)
    if site is None:
        return Patient.objects.none()
    return Patient.objects.filter(site=site)


def patient_search(*, user: User, query: str = "") -> QuerySet[Patient]:
    qs = patients_for_user(user=user)
    query = query.strip()
    if query:
        qs = qs.filter(
            Q(name__icontains=query) | Q(pseudonym__iexact=query) | Q(phone__contains=query)
        )
    return qs.order_by("name", "birth_date")


def patient_get(*, user: User, patient_id: int) -> Patient:
    try:
        return patients_for_user(user=user).get(pk=patient_id)
    except (Patient.DoesNotExist, ValueError, TypeError):
        raise NotFound(_("Patient not found.")) from None


def screenings_for_user(*, user: User) -> QuerySet[Screening]:
    qs = Screening.objects.select_related("patient", "site", "health_worker")
    if user.is_authenticated and user.is_platform_admin:
        return qs
    site = user_site(user=user)
    if site is None:
        return qs.none()
    return qs.filter(site=site)


def screening_get(*, user: User, screening_id: int) -> Screening:
    try:
        return (
            screenings_for_user(user=user)
            .prefetch_related("images", "results")
            .get(pk=screening_id)
        )
    except (Screening.DoesNotExist, ValueError, TypeError):
        raise NotFound(_("Screening not found.")) from None


def worklist(*, user: User, limit: int = 100) -> QuerySet[Screening]:
    # The worklist badges that downstream apps register read their relations from each row;
    # prefetching what they declare keeps the list at a fixed number of queries.
    return (
        screenings_for_user(user=user)
        .prefetch_related(*extensions.worklist_prefetches())
        .order_by("-created_at")[:limit]
    )


def screening_visible_to_other_roles(*, user: User, screening_id: int) -> bool:
    """Pharmacists and hospital staff may see a screening's images when their organisation holds
    a prescription or referral for it; the apps that hold those register the check
    (``screening.extensions.register_viewer``), so screening never names them."""
    return extensions.may_view(user=user, screening_id=screening_id)


def image_get(*, user: User, image_id: int) -> ScreeningImage:
    image = ScreeningImage.objects.filter(pk=image_id).select_related("screening").first()
    if image is None or not _can_view(user=user, screening=image.screening):
        raise NotFound(_("Image not found."))
    return image


def result_get(*, user: User, result_id: int) -> EyeResult:
    result = EyeResult.objects.filter(pk=result_id).select_related("screening").first()
    if result is None or not _can_view(user=user, screening=result.screening):
        raise NotFound(_("Heatmap not found."))
    return result


def _can_view(*, user: User, screening: Screening) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_platform_admin:
        return True
    site = user_site(user=user)
    if site is not None:
        return screening.site_id == site.id
    return screening_visible_to_other_roles(user=user, screening_id=screening.id)


def duplicate_patients(*, site: Site, name: str, birth_date, phone: str) -> QuerySet[Patient]:
    match = Q(name__iexact=name.strip(), birth_date=birth_date)
    if phone.strip():
        match |= Q(phone=phone.strip())
    return Patient.objects.filter(site=site).filter(match)
