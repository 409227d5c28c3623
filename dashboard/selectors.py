"""The dashboard's reads: who may see what, and every aggregate, computed in SQL.

Each section is one query (``GROUP BY`` local day and triage for the time series and the triage
mix, conditional ``COUNT(...) FILTER (WHERE ...)`` for the rates, ``GROUP BY`` the findings list
for the positive rates), 8 in all (9 with a region). Python only adds up the grouped rows (at most
a few thousand, however many screenings there are), never loops over screenings;
tests/dashboard pins the query count and bench/dashboard_bench.py times it on 100,000.

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
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import EmptyResultSet, FieldError
from django.db import connection, transaction
from django.db.models import (
    Count,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce, TruncDate
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


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _range(filters: DashboardFilters) -> tuple[dt.datetime, dt.datetime]:
    """[start of date_from, start of the day after date_to) in local time."""
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(filters.date_from, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(filters.date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


@dataclass(frozen=True)
class _Selection:
    """The screenings a dashboard shows: created in [start, end), at one of ``site_ids`` (None:
    any site). ``id_range``, once known, is the lowest and highest id among them."""

    start: dt.datetime
    end: dt.datetime
    site_ids: tuple[int, ...] | None
    id_range: tuple[int, int] | None = None

    def q(self, prefix: str = "") -> Q:
        """As a Q on Screening (prefix "") or on a model pointing to it ("screening__")."""
        q = Q(**{f"{prefix}created_at__gte": self.start, f"{prefix}created_at__lt": self.end})
        # A draft was never submitted: it is not a screening yet.
        q &= ~Q(**{f"{prefix}status": Screening.Status.DRAFT})
        if self.site_ids is not None:
            q &= Q(**{f"{prefix}site_id__in": self.site_ids})
        if self.id_range is not None and prefix:
            # Redundant (every screening in the selection has an id in the range) but it lets
            # PostgreSQL read only that slice of the images/results/referrals through their
            # screening_id index instead of hashing the whole table: ids grow with created_at,
            # so a recent range is a narrow slice. Correct whatever the ids are.
            column = f"{prefix.removesuffix('__')}_id"
            q &= Q(**{f"{column}__gte": self.id_range[0], f"{column}__lte": self.id_range[1]})
        return q


def _selection(scope: DashboardScope, filters: DashboardFilters) -> _Selection:
    """Regions become site ids up front (one small query): ``site_id IN (...)`` lets PostgreSQL
    use the screening (site, created_at) index, where a join on site.region scanned the whole
    range (2x slower for one region in bench/dashboard_bench.py)."""
    start, end = _range(filters)
    site = filters.site
    if site is not None:
        # filters_parse already checked the site against the scope; checked again here so that
        # no caller of this selector can read outside its scope.
        allowed = scope.allows_region(site.region) and filters.region in ("", site.region)
        return _Selection(start, end, (site.pk,) if allowed else ())
    if scope.regions is None and not filters.region:
        return _Selection(start, end, None)
    sites = Site.objects.all()
    if scope.regions is not None:
        sites = sites.filter(region__in=scope.regions)
    if filters.region:
        sites = sites.filter(region=filters.region)
    return _Selection(start, end, tuple(sites.values_list("id", flat=True)))


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


def _fill_days(
    rows: dict[dt.date, int], first: dt.date, last: dt.date, step: int
) -> list[tuple[dt.date, int]]:
    out = []
    day = first
    while day <= last:
        out.append((day, rows.get(day, 0)))
        day += dt.timedelta(days=step)
    return out


def _as_date(value: dt.date | dt.datetime) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _screening_counts(
    sel: _Selection, filters: DashboardFilters, data: DashboardData
) -> tuple[int, int]:
    """Per day, per week, in total and per triage, from ONE query grouped by (local day,
    triage): at most 731 x 6 rows whatever the number of screenings. Summing those rows into
    weeks and totals replaced three scans of the range with one (bench/dashboard_bench.py)."""
    tz = timezone.get_current_timezone()
    rows = (
        Screening.objects.filter(sel.q())
        .order_by()
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day", "triage")
        .annotate(n=Count("id"), lo=Min("id"), hi=Max("id"))
        .values_list("day", "triage", "n", "lo", "hi")
    )
    per_day: dict[dt.date, int] = defaultdict(int)
    per_week: dict[dt.date, int] = defaultdict(int)
    per_triage: dict[str, int] = defaultdict(int)
    lowest, highest = 0, -1  # an empty id range when there is no screening
    for day, triage, n, lo, hi in rows:
        lowest = lo if highest < 0 else min(lowest, lo)
        highest = max(highest, hi)
        day = _as_date(day)
        per_day[day] += n
        # Weeks start on Monday (ISO, like PostgreSQL's date_trunc('week')).
        per_week[day - dt.timedelta(days=day.weekday())] += n
        per_triage[triage] += n
    data.per_day = _fill_days(per_day, filters.date_from, filters.date_to, 1)
    # The first and last weeks may be partial weeks of the range.
    first_monday = filters.date_from - dt.timedelta(days=filters.date_from.weekday())
    data.per_week = _fill_days(per_week, first_monday, filters.date_to, 7)
    data.screenings_total = sum(per_day.values())
    triaged = sum(per_triage[value] for value in Triage.values)
    data.untriaged = data.screenings_total - triaged
    data.triage = [RateRow(value, per_triage[value], triaged) for value in Triage.values]
    return lowest, highest


def _image_quality(sel: _Selection, data: DashboardData) -> None:
    counts = ScreeningImage.objects.filter(sel.q("screening__")).aggregate(
        total=Count("id"), gradable=Count("id", filter=Q(gradable=True))
    )
    data.images_total, data.images_gradable = counts["total"], counts["gradable"]


def _positive_rates(sel: _Selection, data: DashboardData) -> None:
    """The share of eye results whose findings hold each class letter.

    Grouped in SQL by the findings list itself: there are at most 2^8 distinct lists, and
    adding up the letters of those few groups is cheaper than eight jsonb containment tests per
    row (bench: 260-400 ms against 470-590 ms on 178,000 results). A letter listed twice counts
    once, as containment would."""
    groups = (
        EyeResult.objects.filter(sel.q("screening__"))
        .order_by()
        .values("findings")
        .annotate(n=Count("id"))
        .values_list("findings", "n")
    )
    total = 0
    per_class: dict[str, int] = defaultdict(int)
    for findings, n in groups:
        total += n
        letters = findings if isinstance(findings, list) else []
        for letter in {c for c in letters if isinstance(c, str)}:
            per_class[letter] += n
    data.results_total = total
    data.positive = [RateRow(c, per_class[c], total) for c in CLASS_CODES]


def _referral_history(ReferralEvent, sel: _Selection) -> dict[str, Any]:  # noqa: N803
    """The funnel and the time to acceptance in one pass over the events of the referrals in range.

    Inner query, one row per referral (GROUP BY): did it ever reach each step, and when was it
    first sent and first accepted. Outer query: count the referrals per step and take the mean
    and median of (first accepted - first sent); AVG and percentile_cont skip the NULLs of
    referrals never accepted. Time runs from the first sending: escalation to another hospital
    or a re-send after a decline keeps the clock running, since the patient is still waiting.

    Django cannot aggregate over aggregates, hence the outer SELECT in SQL around the ORM's
    inner query (whose parameters stay parameters). Correlated subqueries per referral (the
    first version) cost 4 index probes per referral and ~1 s at 18,000 referrals."""
    flags = {
        f"r_{step}": Count("id", filter=Q(to_status__in=states))
        for step, states in _REACHED.items()
    }
    inner = (
        ReferralEvent.objects.filter(sel.q("referral__screening__"))
        .order_by()
        .values("referral_id")
        .annotate(
            sent_t=Min("created_at", filter=Q(to_status="sent")),
            accepted_t=Min("created_at", filter=Q(to_status="accepted")),
            r_declined=Count("id", filter=Q(to_status="declined")),
            r_no_show=Count("id", filter=Q(to_status="no_show")),
            **flags,
        )
    )
    steps = [*_REACHED, "declined", "no_show"]
    try:
        sql, params = inner.query.sql_with_params()
    except EmptyResultSet:  # no site in the selection (a region without sites): nothing to count
        return {**dict.fromkeys(steps, 0), "mean": None, "median": None}
    counted = ", ".join(f"COUNT(*) FILTER (WHERE r_{step} > 0)" for step in steps)
    if _is_postgres():
        wait = "EXTRACT(EPOCH FROM (accepted_t - sent_t))"
        timing = f"AVG({wait}), PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY {wait})"
    else:  # SQLite (a bare `make run`): no percentile_cont, datetimes are text
        timing = "AVG((julianday(accepted_t) - julianday(sent_t)) * 86400.0), NULL"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counted}, {timing} FROM ({sql}) AS per_referral", params)  # noqa: S608 - fixed column names; values are parameters
        row = cursor.fetchone()
    result: dict[str, Any] = dict(zip(steps, row[: len(steps)], strict=True))
    mean, median = row[len(steps) :]
    result["mean"] = dt.timedelta(seconds=float(mean)) if mean is not None else None
    result["median"] = dt.timedelta(seconds=float(median)) if median is not None else None
    return result


def _referral_section(sel: _Selection) -> dict[str, Any] | None:
    Referral = _optional_model("referrals", "Referral")
    ReferralEvent = _optional_model("referrals", "ReferralEvent")
    if Referral is None:
        return None
    referrals = Referral.objects.filter(sel.q("screening__"))
    counts = {
        "total": Count("id"),
        "cancelled": Count("id", filter=Q(status="cancelled")),
        "open": Count("id", filter=~Q(status__in=("completed", "cancelled"))),
    }
    if ReferralEvent is not None:
        totals = referrals.aggregate(**counts)
        reached = _referral_history(ReferralEvent, sel)
    else:
        # Without the history the current status is all there is: a lower bound on each step.
        totals = referrals.aggregate(
            **counts,
            **{step: Count("id", filter=Q(status__in=states)) for step, states in _REACHED.items()},
            declined=Count("id", filter=Q(status="declined")),
            no_show=Count("id", filter=Q(status="no_show")),
        )
        reached = {**totals, "mean": None, "median": None}
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
        "mean_to_accept": reached["mean"],
        "median_to_accept": reached["median"],
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
    with transaction.atomic():
        if _is_postgres():
            # PostgreSQL's default random_page_cost (4, for spinning disks) makes it hash-join
            # the whole image/result tables for one site or region rather than probe their
            # screening_id index for the few screenings selected: 150 ms instead of 35 ms for a
            # site's year (bench). 1.1 is the usual value for SSDs and cached data; LOCAL ends
            # with this transaction, so nothing else on the connection is affected.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL random_page_cost = 1.1")
        sel = _selection(scope, filters)
        sel = replace(sel, id_range=_screening_counts(sel, filters, data))
        _image_quality(sel, data)
        _positive_rates(sel, data)
        data.referrals = _guarded("referrals", _referral_section, sel)
        data.pharmacy = _guarded("pharmacy", _pharmacy_section, scope, filters)
    return data
