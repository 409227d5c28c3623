"""The dashboard's kiosk section: stock and dispenses of the pharmacies in scope.

Kiosk stock and dispenses belong to pharmacies, which have a region and serve sites
(PharmacySiteLink); they are not screenings, so the daily roll-up does not hold them: three small
queries over kiosks, whatever the number of screenings.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from dashboard.scope import DashboardFilters, DashboardScope
from pharmacy.models import Dispense, Kiosk, StockLot


def kiosk_section(*, scope: DashboardScope, filters: DashboardFilters) -> dict[str, Any]:
    """Kiosk stock and dispenses of the pharmacies in scope (3 queries)."""
    start, end = filters.bounds()
    today = timezone.localdate()

    def kiosk_q(prefix: str = "") -> Q:
        q = Q()
        if scope.regions is not None:
            q &= Q(**{f"{prefix}pharmacy__region__in": scope.regions})
        if filters.region:
            q &= Q(**{f"{prefix}pharmacy__region": filters.region})
        if filters.site is not None:
            # Kiosks of the pharmacies that serve the chosen site.
            q &= Q(**{f"{prefix}pharmacy__site_links__site_id": filters.site.pk})
        return q

    in_range = Q(created_at__gte=start, created_at__lt=end)
    stock = (
        StockLot.objects.filter(kiosk=OuterRef("pk"), expiry__gte=today)
        .order_by()
        .values("kiosk")
        .annotate(s=Sum("quantity"))
        .values("s")
    )

    def dispenses(status: Dispense.Status) -> Subquery:
        return Subquery(
            Dispense.objects.filter(in_range, kiosk=OuterRef("pk"), status=status)
            .order_by()
            .values("kiosk")
            .annotate(n=Count("id"))
            .values("n"),
            output_field=IntegerField(),
        )

    limit = 100
    kiosks = list(
        Kiosk.objects.filter(kiosk_q())
        .exclude(status=Kiosk.Status.RETIRED)
        .annotate(
            stock=Coalesce(Subquery(stock, output_field=IntegerField()), 0),
            dispensed=Coalesce(dispenses(Dispense.Status.COMPLETED), 0),
            failed=Coalesce(dispenses(Dispense.Status.FAILED), 0),
        )
        .select_related("pharmacy")
        # The emptiest kiosks first: they are the ones to restock.
        .order_by("stock", "pharmacy__name", "name")[: limit + 1]
    )
    totals = Dispense.objects.filter(kiosk_q("kiosk__"), in_range).aggregate(
        completed=Count("id", filter=Q(status=Dispense.Status.COMPLETED)),
        failed=Count("id", filter=Q(status=Dispense.Status.FAILED)),
        reserved=Count("id", filter=Q(status=Dispense.Status.RESERVED)),
    )
    stock_total = (
        StockLot.objects.filter(kiosk_q("kiosk__"), expiry__gte=today)
        .exclude(kiosk__status=Kiosk.Status.RETIRED)
        .aggregate(boxes=Coalesce(Sum("quantity"), 0), kiosks=Count("kiosk", distinct=True))
    )
    return {
        "kiosks": kiosks[:limit],
        "kiosks_truncated": len(kiosks) > limit,
        "low_stock_threshold": settings.PHARMACY_LOW_STOCK_THRESHOLD,
        "stock_boxes": stock_total["boxes"],
        "stocked_kiosks": stock_total["kiosks"],
        "dispenses": totals,
    }
