"""The dashboard's reads: who may see what, and every aggregate, computed in SQL.

Each section is one query (conditional ``COUNT(...) FILTER (WHERE ...)`` for the rates and the
triage mix, ``GROUP BY`` a truncated date for the time series), so the cost depends on the number
of rows in the range, never on Python looping over them; tests/dashboard pins the query count.

All figures count screenings by the day they were created (local time, settings.TIME_ZONE) and
follow those screenings: images, eye results and referrals belong to the range and the site of
their screening ("of the people screened in March, how many were referred, how many seen?").
Kiosk stock and dispenses belong to pharmacies, which have a region and serve sites.

Referrals and pharmacy are separate apps built in parallel; their sections read the models
through the app registry and come back as ``None`` (shown as "no data") if a model or field is
missing, so the dashboard never fails because a sibling app is behind.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldError
from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    DateField,
    DurationField,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce, TruncDate, TruncWeek
from django.utils import timezone

from accounts.models import User
from dashboard.models import DashboardAccess
from screening.models import CLASS_CODES, EyeResult, Screening, ScreeningImage, Site, Triage

if TYPE_CHECKING:
    from dashboard.filters import DashboardFilters

logger = logging.getLogger(__name__)

# The referral funnel's main path. A referral "reached" a step if its history has an event into
# that state or into any later state of the path: completing straight from accepted implies
# attendance, a no-show was accepted, a decline had been sent.
FUNNEL_STEPS = ("proposed", "sent", "accepted", "attended", "completed")
_REACHED = {
    "sent": ("sent", "accepted", "declined", "attended", "no_show", "completed"),
    "accepted": ("accepted", "attended", "no_show", "completed"),
    "attended": ("attended", "completed"),
    "completed": ("completed",),
}


# --- access ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardScope:
    """What a user may see: every region (``regions is None``) or only the listed ones."""

    regions: tuple[str, ...] | None

    @property
    def all_regions(self) -> bool:
        return self.regions is None

    def allows_region(self, region: str) -> bool:
        return self.regions is None or region in self.regions


def dashboard_scope(*, user: User) -> DashboardScope | None:
    """None: the user may not see the dashboard at all (403)."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_platform_admin:
        return DashboardScope(regions=None)
    regions = DashboardAccess.objects.filter(user=user).values_list("regions", flat=True).first()
    if regions is None:
        return None
    # Fail closed: a malformed row (not a list of names) grants nothing rather than everything.
    if not isinstance(regions, list) or not all(isinstance(r, str) and r.strip() for r in regions):
        logger.warning("DashboardAccess for user %s has malformed regions; access denied", user.pk)
        return None
    return DashboardScope(regions=tuple(sorted({r.strip() for r in regions})) or None)


def sites_for_scope(*, scope: DashboardScope) -> QuerySet[Site]:
    qs = Site.objects.order_by("region", "name")
    if scope.regions is not None:
        qs = qs.filter(region__in=scope.regions)
    return qs


# --- helpers --------------------------------------------------------------------------------


class Median(Aggregate):
    """PostgreSQL's ``percentile_cont(0.5) WITHIN GROUP (ORDER BY x)``; NULLs are ignored."""

    function = "PERCENTILE_CONT"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _range(filters: DashboardFilters) -> tuple[dt.datetime, dt.datetime]:
    """[start of date_from, start of the day after date_to) in local time."""
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(filters.date_from, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(filters.date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


def _screening_q(scope: DashboardScope, filters: DashboardFilters, prefix: str = "") -> Q:
    """The screenings in range and scope, as a Q usable from Screening (prefix "") or from a
    model that points to it (prefix "screening__")."""
    start, end = _range(filters)
    q = Q(**{f"{prefix}created_at__gte": start, f"{prefix}created_at__lt": end})
    # A draft was never submitted: it is not a screening yet.
    q &= ~Q(**{f"{prefix}status": Screening.Status.DRAFT})
    if scope.regions is not None:
        q &= Q(**{f"{prefix}site__region__in": scope.regions})
    if filters.region:
        q &= Q(**{f"{prefix}site__region": filters.region})
    if filters.site is not None:
        q &= Q(**{f"{prefix}site_id": filters.site.pk})
    return q


def _has_finding(letter: str) -> Q:
    # findings is a JSON list of class letters: jsonb containment on PostgreSQL; the SQLite of a
    # bare `make run` has no containment operator, and the quoted letter cannot match anything
    # else in a list of one-letter strings.
    if _is_postgres():
        return Q(findings__contains=[letter])
    return Q(findings__icontains=f'"{letter}"')


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _optional_model(app_label: str, name: str):  # noqa: ANN202
    try:
        return apps.get_model(app_label, name)
    except LookupError:
        return None


# --- sections -------------------------------------------------------------------------------


@dataclass
class RateRow:
    key: str
    count: int
    total: int

    @property
    def rate(self) -> float | None:
        return _rate(self.count, self.total)


@dataclass
class DashboardData:
    filters: DashboardFilters
    screenings_total: int = 0
    per_day: list[tuple[dt.date, int]] = field(default_factory=list)
    per_week: list[tuple[dt.date, int]] = field(default_factory=list)
    triage: list[RateRow] = field(default_factory=list)
    untriaged: int = 0
    images_total: int = 0
    images_gradable: int = 0
    results_total: int = 0
    positive: list[RateRow] = field(default_factory=list)
    referrals: dict[str, Any] | None = None
    pharmacy: dict[str, Any] | None = None

    @property
    def gradable_rate(self) -> float | None:
        return _rate(self.images_gradable, self.images_total)


def _fill_days(rows: dict[dt.date, int], first: dt.date, last: dt.date, step: int) -> list[tuple[dt.date, int]]:
    out = []
    day = first
    while day <= last:
        out.append((day, rows.get(day, 0)))
        day += dt.timedelta(days=step)
    return out


def _as_date(value: dt.date | dt.datetime) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _time_series(scope: DashboardScope, filters: DashboardFilters, data: DashboardData) -> None:
    tz = timezone.get_current_timezone()
    screenings = Screening.objects.filter(_screening_q(scope, filters)).order_by()
    daily = (
        screenings.annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day").annotate(n=Count("id")).values_list("day", "n")
    )
    data.per_day = _fill_days({_as_date(d): n for d, n in daily}, filters.date_from, filters.date_to, 1)
    weekly = (
        screenings.annotate(week=TruncWeek("created_at", tzinfo=tz, output_field=DateField()))
        .values("week").annotate(n=Count("id")).values_list("week", "n")
    )
    # Weeks start on Monday (ISO, and PostgreSQL's date_trunc('week')); the first and last may be
    # partial weeks of the range.
    first_monday = filters.date_from - dt.timedelta(days=filters.date_from.weekday())
    data.per_week = _fill_days({_as_date(w): n for w, n in weekly}, first_monday, filters.date_to, 7)


def _screening_totals(scope: DashboardScope, filters: DashboardFilters, data: DashboardData) -> None:
    counts = Screening.objects.filter(_screening_q(scope, filters)).aggregate(
        total=Count("id"),
        **{f"t_{value}": Count("id", filter=Q(triage=value)) for value in Triage.values},
    )
    data.screenings_total = counts["total"]
    triaged = sum(counts[f"t_{value}"] for value in Triage.values)
    data.untriaged = data.screenings_total - triaged
    data.triage = [RateRow(value, counts[f"t_{value}"], triaged) for value in Triage.values]


def _image_quality(scope: DashboardScope, filters: DashboardFilters, data: DashboardData) -> None:
    counts = ScreeningImage.objects.filter(_screening_q(scope, filters, "screening__")).aggregate(
        total=Count("id"), gradable=Count("id", filter=Q(gradable=True))
    )
    data.images_total, data.images_gradable = counts["total"], counts["gradable"]


def _positive_rates(scope: DashboardScope, filters: DashboardFilters, data: DashboardData) -> None:
    # One query, eight filtered counts: the share of eye results whose findings hold each class.
    counts = EyeResult.objects.filter(_screening_q(scope, filters, "screening__")).aggregate(
        total=Count("id"), **{f"c_{c}": Count("id", filter=_has_finding(c)) for c in CLASS_CODES}
    )
    data.results_total = counts["total"]
    data.positive = [RateRow(c, counts[f"c_{c}"], counts["total"]) for c in CLASS_CODES]


def _referral_section(scope: DashboardScope, filters: DashboardFilters) -> dict[str, Any] | None:
    Referral = _optional_model("referrals", "Referral")
    ReferralEvent = _optional_model("referrals", "ReferralEvent")
    if Referral is None:
        return None
    referrals = Referral.objects.filter(_screening_q(scope, filters, "screening__"))
    counts = {
        "total": Count("id"),
        "cancelled": Count("id", filter=Q(status="cancelled")),
        "open": Count("id", filter=~Q(status__in=("completed", "cancelled"))),
    }
    if ReferralEvent is not None:
        # Time to acceptance: from the first time the referral went to a hospital to its first
        # acceptance (an escalation to another hospital keeps the clock running: the patient
        # is still waiting). Avg and percentile_cont skip the NULLs of unaccepted referrals.
        def first(status: str) -> Subquery:
            return Subquery(
                ReferralEvent.objects.filter(referral=OuterRef("pk"), to_status=status)
                .order_by("created_at", "id").values("created_at")[:1]
            )

        wait = F("accepted_t") - F("sent_t")
        counts["mean"] = Avg(wait, output_field=DurationField())
        if _is_postgres():
            counts["median"] = Median(wait, output_field=DurationField())
        totals = referrals.annotate(sent_t=first("sent"), accepted_t=first("accepted")).aggregate(
            **counts
        )
        events = ReferralEvent.objects.filter(_screening_q(scope, filters, "referral__screening__"))
        reached = events.aggregate(
            **{step: Count("referral_id", distinct=True, filter=Q(to_status__in=states))
               for step, states in _REACHED.items()},
            declined=Count("referral_id", distinct=True, filter=Q(to_status="declined")),
            no_show=Count("referral_id", distinct=True, filter=Q(to_status="no_show")),
        )
    else:
        # Without the history the current status is all there is: a lower bound on each step.
        totals = referrals.aggregate(
            **counts,
            **{step: Count("id", filter=Q(status__in=states)) for step, states in _REACHED.items()},
            declined=Count("id", filter=Q(status="declined")),
            no_show=Count("id", filter=Q(status="no_show")),
        )
        reached = totals
    total = totals["total"]
    steps = [("proposed", total)] + [(step, reached[step]) for step in FUNNEL_STEPS[1:]]
    return {
        "history": ReferralEvent is not None,
        "total": total,
        "steps": [RateRow(step, n, total) for step, n in steps],
        "declined": reached["declined"],
        "no_show": reached["no_show"],
        "cancelled": totals["cancelled"],
        "open": totals["open"],
        "mean_to_accept": totals.get("mean"),
        "median_to_accept": totals.get("median"),
    }


def _pharmacy_section(scope: DashboardScope, filters: DashboardFilters) -> dict[str, Any] | None:
    Kiosk = _optional_model("pharmacy", "Kiosk")
    StockLot = _optional_model("pharmacy", "StockLot")
    Dispense = _optional_model("pharmacy", "Dispense")
    if Kiosk is None or StockLot is None or Dispense is None:
        return None
    start, end = _range(filters)
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
        StockLot.objects.filter(kiosk=OuterRef("pk"), expiry__gte=today).order_by()
        .values("kiosk").annotate(s=Sum("quantity")).values("s")
    )

    def dispenses(status: str) -> Subquery:
        return Subquery(
            Dispense.objects.filter(in_range, kiosk=OuterRef("pk"), status=status).order_by()
            .values("kiosk").annotate(n=Count("id")).values("n"),
            output_field=IntegerField(),
        )

    limit = 100
    kiosks = list(
        Kiosk.objects.filter(kiosk_q()).exclude(status="retired")
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
    stock_total = StockLot.objects.filter(kiosk_q("kiosk__"), expiry__gte=today).exclude(
        kiosk__status="retired"
    ).aggregate(boxes=Coalesce(Sum("quantity"), 0), kiosks=Count("kiosk", distinct=True))
    return {
        "kiosks": kiosks[:limit],
        "kiosks_truncated": len(kiosks) > limit,
        "low_stock_threshold": getattr(settings, "PHARMACY_LOW_STOCK_THRESHOLD", 3),
        "stock_boxes": stock_total["boxes"],
        "stocked_kiosks": stock_total["kiosks"],
        "dispenses": totals,
    }


def _guarded(name: str, fn, *args):  # noqa: ANN001, ANN202
    """A sibling app's section that does not match its models (yet) is shown as empty."""
    try:
        return fn(*args)
    except (LookupError, FieldError) as exc:
        logger.warning("dashboard section %s unavailable: %s", name, exc)
        return None


def dashboard_data(*, scope: DashboardScope, filters: DashboardFilters) -> DashboardData:
    """Every figure of the dashboard for ``filters`` within ``scope`` (a fixed number of queries)."""
    data = DashboardData(filters=filters)
    _time_series(scope, filters, data)
    _screening_totals(scope, filters, data)
    _image_quality(scope, filters, data)
    _positive_rates(scope, filters, data)
    data.referrals = _guarded("referrals", _referral_section, scope, filters)
    data.pharmacy = _guarded("pharmacy", _pharmacy_section, scope, filters)
    return data
