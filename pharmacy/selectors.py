"""Reads for the pharmacy app, already scoped to the user's organisation.

A pharmacist sees the prescriptions routed to their pharmacy and its kiosks; a health worker sees
the prescriptions of their site's patients; a platform admin sees everything. Anything outside the
scope is "not found" (404), never "forbidden", so that ids leak nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Prefetch, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from geopy.distance import geodesic

from accounts.models import Role, User
from config.errors import NotFound
from pharmacy.models import (
    Dispense,
    Kiosk,
    KioskCallRequest,
    Medication,
    Pharmacy,
    PharmacyAlert,
    Prescription,
    PrescriptionItem,
    StockLot,
)
from screening.models import Screening, Site


def pharmacy_for_user(*, user: User) -> Pharmacy | None:
    if not user.is_authenticated or user.role != Role.PHARMACIST:
        return None
    membership = getattr(user, "pharmacist_membership", None)
    return membership.pharmacy if membership is not None else None


def site_id_for_user(*, user: User) -> int | None:
    if not user.is_authenticated or user.role != Role.HEALTH_WORKER:
        return None
    membership = getattr(user, "site_membership", None)
    return membership.site_id if membership is not None else None


def pharmacy_for_site(*, site: Site) -> Pharmacy | None:
    """The pharmacy a site's prescriptions are routed to: the nearest pharmacy linked to the site
    (by straight-line distance; ties and missing coordinates fall back to the lowest id)."""
    pharmacies = list(Pharmacy.objects.filter(site_links__site=site).order_by("pk"))
    if not pharmacies:
        return None
    if site.latitude is None or site.longitude is None:
        return pharmacies[0]

    def distance(pharmacy: Pharmacy) -> float:
        if pharmacy.latitude is None or pharmacy.longitude is None:
            return float("inf")
        return geodesic((site.latitude, site.longitude), (pharmacy.latitude, pharmacy.longitude)).km

    return min(pharmacies, key=distance)


def prescriptions_for_user(*, user: User) -> QuerySet[Prescription]:
    qs = Prescription.objects.select_related(
        "patient", "screening", "pharmacy", "decided_by", "requested_by", "dispense_code"
    ).prefetch_related(
        Prefetch("items", queryset=PrescriptionItem.objects.select_related("medication__category"))
    )
    if not user.is_authenticated:
        return qs.none()
    if user.is_platform_admin:
        return qs
    pharmacy = pharmacy_for_user(user=user)
    if pharmacy is not None:
        return qs.filter(pharmacy=pharmacy)
    site_id = site_id_for_user(user=user)
    if site_id is not None:
        return qs.filter(patient__site_id=site_id)
    return qs.none()


def prescription_get_for_user(*, user: User, prescription_id: int) -> Prescription:
    prescription = prescriptions_for_user(user=user).filter(pk=prescription_id).first()
    if prescription is None:
        raise NotFound(_("Prescription not found."), code="prescription_not_found")
    return prescription


def prescription_queue(
    *, user: User, status: str = Prescription.Status.PENDING_APPROVAL
) -> QuerySet[Prescription]:
    qs = prescriptions_for_user(user=user).filter(status=status)
    # Oldest first: the patient who has waited longest is seen first.
    return qs.order_by("created_at") if status == Prescription.Status.PENDING_APPROVAL else qs


def screening_get_for_health_worker(*, user: User, screening_id: int) -> Screening:
    site_id = site_id_for_user(user=user)
    screening = None
    if site_id is not None:
        screening = (
            Screening.objects.select_related("patient", "site")
            .filter(pk=screening_id, site_id=site_id)
            .first()
        )
    if screening is None:
        raise NotFound(_("Screening not found."), code="screening_not_found")
    return screening


def medications_for_request() -> QuerySet[Medication]:
    return Medication.objects.filter(active=True).select_related("category").order_by("name_ko")


def prescription_warnings(*, prescription: Prescription) -> list[str]:
    """Allergies and contraindications found in the patient record for this prescription's items.

    Uses the prescription's prefetched items; no query of its own."""
    patient = prescription.patient
    record = f"{patient.allergies}\n{patient.medical_notes}".lower()
    findings = set(prescription.screening.findings or [])
    warnings: list[str] = []
    for item in prescription.items.all():
        medication = item.medication
        for keyword in (k.strip().lower() for k in medication.allergy_keywords.split(",")):
            if keyword and keyword in record:
                warnings.append(
                    _(
                        "%(medication)s: the patient record mentions “%(keyword)s” (allergy or intolerance)."
                    )
                    % {"medication": medication.name_ko, "keyword": keyword}
                )
        if medication.avoid_in_glaucoma and ("G" in findings or patient.family_history_glaucoma):
            warnings.append(
                _(
                    "%(medication)s: avoid in glaucoma or suspected glaucoma (screening finding or family history)."
                )
                % {"medication": medication.name_ko}
            )
        if not medication.kiosk_dispensable:
            warnings.append(
                _(
                    "%(medication)s cannot be released by a kiosk (not an OTC item of a kiosk category)."
                )
                % {"medication": medication.name_ko}
            )
    return warnings


def prescriptions_for_screening(*, user: User, screening: Screening) -> list[Prescription]:
    """The prescriptions of one screening that this user may see (the health worker's panel).

    Two queries whatever the number of prescriptions and items."""
    return list(
        prescriptions_for_user(user=user).filter(screening=screening).order_by("created_at")
    )


@dataclass
class KioskStock:
    kiosk: Kiosk
    online: bool
    lots: list[StockLot] = field(default_factory=list)


@dataclass
class StockAlert:
    kind: str  # low_stock | expiring | expired | offline
    kiosk: Kiosk
    message: str


def kiosks_for_pharmacy(*, pharmacy: Pharmacy) -> QuerySet[Kiosk]:
    return Kiosk.objects.filter(pharmacy=pharmacy).order_by("name")


def kiosk_get_for_user(*, user: User, kiosk_pk: int) -> Kiosk:
    pharmacy = pharmacy_for_user(user=user)
    kiosk = Kiosk.objects.filter(pk=kiosk_pk, pharmacy=pharmacy).first() if pharmacy else None
    if kiosk is None:
        raise NotFound(_("Kiosk not found."), code="kiosk_not_found")
    return kiosk


def stock_overview(
    *, pharmacy: Pharmacy, now: dt.datetime | None = None
) -> tuple[list[KioskStock], list[StockAlert]]:
    """Stock per kiosk and the alerts that follow from it: low stock (by medication, usable lots
    only), lots expiring within PHARMACY_EXPIRY_WARNING_DAYS, expired lots still in a slot, and
    kiosks without a heartbeat for PHARMACY_KIOSK_OFFLINE_MINUTES. Three queries."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    offline_after = dt.timedelta(minutes=settings.PHARMACY_KIOSK_OFFLINE_MINUTES)
    warn_until = today + dt.timedelta(days=settings.PHARMACY_EXPIRY_WARNING_DAYS)
    low = settings.PHARMACY_LOW_STOCK_THRESHOLD

    kiosks = list(kiosks_for_pharmacy(pharmacy=pharmacy))
    lots = list(
        StockLot.objects.filter(kiosk__pharmacy=pharmacy)
        .select_related("medication")
        .order_by("kiosk_id", "slot", "expiry", "pk")
    )
    by_kiosk: dict[int, KioskStock] = {}
    alerts: list[StockAlert] = []
    for kiosk in kiosks:
        online = (
            kiosk.last_heartbeat_at is not None and now - kiosk.last_heartbeat_at <= offline_after
        )
        by_kiosk[kiosk.pk] = KioskStock(kiosk=kiosk, online=online)
        if kiosk.status == Kiosk.Status.ACTIVE and not online:
            alerts.append(
                StockAlert(
                    "offline",
                    kiosk,
                    _("No heartbeat from %(kiosk)s for over %(minutes)d minutes.")
                    % {"kiosk": kiosk.name, "minutes": offline_after.seconds // 60},
                )
            )
    usable: dict[tuple[int, int], int] = {}
    medications: dict[int, Medication] = {}
    for lot in lots:
        entry = by_kiosk.get(lot.kiosk_id)
        if entry is None:
            continue
        entry.lots.append(lot)
        medications[lot.medication_id] = lot.medication
        key = (lot.kiosk_id, lot.medication_id)
        if lot.expiry > today:
            usable[key] = usable.get(key, 0) + lot.quantity
        else:
            usable.setdefault(key, 0)
        if lot.quantity > 0 and lot.expiry <= today:
            alerts.append(
                StockAlert(
                    "expired",
                    entry.kiosk,
                    _("Expired lot %(lot)s of %(medication)s in slot %(slot)s: remove it.")
                    % {"lot": lot.lot_number, "medication": lot.medication, "slot": lot.slot},
                )
            )
        elif lot.quantity > 0 and lot.expiry <= warn_until:
            alerts.append(
                StockAlert(
                    "expiring",
                    entry.kiosk,
                    _("Lot %(lot)s of %(medication)s in slot %(slot)s expires on %(date)s.")
                    % {
                        "lot": lot.lot_number,
                        "medication": lot.medication,
                        "slot": lot.slot,
                        "date": lot.expiry,
                    },
                )
            )
    for (kiosk_id, medication_id), quantity in usable.items():
        if quantity < low:
            alerts.append(
                StockAlert(
                    "low_stock",
                    by_kiosk[kiosk_id].kiosk,
                    _("Low stock at %(kiosk)s: %(medication)s, %(quantity)d left.")
                    % {
                        "kiosk": by_kiosk[kiosk_id].kiosk.name,
                        "medication": medications[medication_id],
                        "quantity": quantity,
                    },
                )
            )
    return list(by_kiosk.values()), alerts


def open_alerts_for_pharmacy(*, pharmacy: Pharmacy) -> QuerySet[PharmacyAlert]:
    return PharmacyAlert.objects.filter(pharmacy=pharmacy, resolved_at__isnull=True).select_related(
        "kiosk"
    )


def dispenses_for_pharmacy(*, pharmacy: Pharmacy) -> QuerySet[Dispense]:
    return (
        Dispense.objects.filter(kiosk__pharmacy=pharmacy)
        .select_related("kiosk", "prescription__patient")
        .prefetch_related("lines__medication")
        .order_by("-created_at")
    )


def call_requests_for_pharmacy(*, pharmacy: Pharmacy) -> QuerySet[KioskCallRequest]:
    return KioskCallRequest.objects.filter(pharmacy=pharmacy).select_related("kiosk", "answered_by")


def stock_quantity_by_medication(*, kiosk: Kiosk) -> dict[int, int]:
    today = timezone.localdate()
    rows = (
        StockLot.objects.filter(kiosk=kiosk, expiry__gt=today)
        .values("medication_id")
        .annotate(total=Sum("quantity"))
    )
    return {row["medication_id"]: row["total"] or 0 for row in rows}


def pharmacist_can_view_screening(*, user: User, screening_id: int) -> bool:
    """A pharmacist may see a screening (its photos) when a prescription of that screening was
    routed to their pharmacy. Called by screening.selectors by name."""
    pharmacy = pharmacy_for_user(user=user)
    return (
        pharmacy is not None
        and Prescription.objects.filter(pharmacy=pharmacy, screening_id=screening_id).exists()
    )
