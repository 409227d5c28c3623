"""The dashboard's kiosk section: stock and dispenses of the pharmacies in scope.

Kiosk stock and dispenses belong to pharmacies, which have a region and serve sites
(PharmacySiteLink); they are not screenings, so the daily roll-up does not hold them: three small
queries over kiosks, whatever the number of screenings. Split from dashboard.selectors, which
calls it; the pharmacy models come through the selector's lookup so that the dashboard still
renders while the pharmacy app is behind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

if TYPE_CHECKING:
    from dashboard.filters import DashboardFilters
    from dashboard.selectors import DashboardScope


def kiosk_section(
    *, scope: DashboardScope, filters: DashboardFilters, get_model: Callable[[str, str], Any]
) -> dict[str, Any] | None:
    """Kiosk stock and dispenses of the pharmacies in scope (3 queries). ``get_model``: the
    selector's lookup of a sibling app's model, which answers None while the app is behind."""
    Kiosk = get_model("pharmacy", "Kiosk")
    StockLot = get_model("pharmacy", "StockLot")
    Dispense = get_model("pharmacy", "Dispense")
    if Kiosk is None or StockLot is None or Dispense is None:
        return None
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(filters.date_from, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(filters.date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
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

    def dispenses(status: str) -> Subquery:
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
        .exclude(status="retired")
        .annotate(
            stock=Coalesce(Subquery(stock, output_field=IntegerField()), 0),
            dispensed=Coalesce(dispenses("completed"), 0),
            failed=Coalesce(dispenses("failed"), 0),
        )
        .select_related("pharmacy")
        # The emptiest kiosks first: they are the ones to restock.
        .order_by("stock", "pharmacy__name", "name")[: limit + 1]
    )
    totals = Dispense.objects.filter(kiosk_q("kiosk__"), in_range).aggregate(
        completed=Count("id", filter=Q(status="completed")),
        failed=Count("id", filter=Q(status="failed")),
        reserved=Count("id", filter=Q(status="reserved")),
    )
    stock_total = (
        StockLot.objects.filter(kiosk_q("kiosk__"), expiry__gte=today)
        .exclude(kiosk__status="retired")
        .aggregate(boxes=Coalesce(Sum("quantity"), 0), kiosks=Count("kiosk", distinct=True))
    )
    return {
        "kiosks": kiosks[:limit],
        "kiosks_truncated": len(kiosks) > limit,
        "low_stock_threshold": getattr(settings, "PHARMACY_LOW_STOCK_THRESHOLD", 3),
        "stock_boxes": stock_total["boxes"],
        "stocked_kiosks": stock_total["kiosks"],
        "dispenses": totals,
    }
