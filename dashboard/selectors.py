"""The dashboard's reads: who may see what, and every aggregate, computed in SQL.

Closed days come from the daily roll-up (dashboard.models.DailySiteStats, kept by
dashboard.services and its beat task): one query grouped by day, at most 731 rows of sums,
whatever the number of screenings. Today, and any day the roll-up lacks or computed before the
day was over, is counted from the raw rows, so today's figures are always exact, and the two
parts are added up (the median time to acceptance from the waits themselves, which the roll-up
keeps). The raw part is one query per section (``GROUP BY`` local day and triage for the time
series and the triage mix, conditional ``COUNT(...) FILTER (WHERE ...)`` for the rates,
``GROUP BY`` the findings list for the positive rates, one statement for the whole referral
section): with the roll-up and the kiosks, 8 queries in all (9 with a region; fewer when every
day is rolled up). Python only adds up grouped rows, never loops over screenings; tests/dashboard
pins the query count and checks the roll-up against the raw rows, bench/dashboard_bench.py times
both on 100,000 screenings.

All figures count screenings by the day they were created (local time, settings.TIME_ZONE) and
follow those screenings: images, eye results and referrals belong to the range and the site of
their screening ("of the people screened in March, how many were referred, how many seen?").
Kiosk stock and dispenses belong to pharmacies, which have a region and serve sites
(dashboard.kiosks).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import (
    Count,
    FilteredRelation,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from accounts.models import User
from dashboard.kiosks import kiosk_section
from dashboard.models import (
    COUNT_FIELDS,
    POSITIVE_FIELDS,
    REFERRAL_FIELDS,
    TRIAGE_FIELDS,
    DashboardAccess,
    RollupDay,
)
from dashboard.scope import DashboardFilters, DashboardScope, day_start
from referrals.models import Referral, ReferralStatus
from screening.models import CLASS_CODES, EyeResult, Screening, ScreeningImage, Site, Triage

logger = logging.getLogger(__name__)

# The referral funnel's main path. A referral "reached" a step if its history has an event into
# that state or into any later state of the path: completing straight from accepted implies
# attendance, a no-show was accepted, a decline had been sent.
_S = ReferralStatus
FUNNEL_STEPS = (_S.PROPOSED, _S.SENT, _S.ACCEPTED, _S.ATTENDED, _S.COMPLETED)
_REACHED = {
    _S.SENT: (_S.SENT, _S.ACCEPTED, _S.DECLINED, _S.ATTENDED, _S.NO_SHOW, _S.COMPLETED),
    _S.ACCEPTED: (_S.ACCEPTED, _S.ATTENDED, _S.NO_SHOW, _S.COMPLETED),
    _S.ATTENDED: (_S.ATTENDED, _S.COMPLETED),
    _S.COMPLETED: (_S.COMPLETED,),
}
# Final states: a referral in any other state is still open.
_CLOSED = (_S.COMPLETED, _S.CANCELLED)


# --- access ---------------------------------------------------------------------------------


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


def day_spans(days: Iterable[dt.date]) -> tuple[tuple[dt.datetime, dt.datetime], ...]:
    """Runs of consecutive days as [start, end) datetimes: few ranges for the index to scan."""
    spans: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if spans and spans[-1][1] == day:
            spans[-1] = (spans[-1][0], day + dt.timedelta(days=1))
        else:
            spans.append((day, day + dt.timedelta(days=1)))
    return tuple((day_start(first), day_start(after)) for first, after in spans)


@dataclass(frozen=True)
class Selection:
    """The screenings a dashboard counts: created in one of ``spans`` ([start, end) datetimes),
    at one of ``site_ids`` (None: any site), drafts left out. ``id_range``, once known, is the
    lowest and highest id among them. The roll-up service counts the same selection per site."""

    spans: tuple[tuple[dt.datetime, dt.datetime], ...]
    site_ids: tuple[int, ...] | None
    id_range: tuple[int, int] | None = None

    def q(self, prefix: str = "") -> Q:
        """As a Q on Screening (prefix "") or on a model pointing to it ("screening__")."""
        if not self.spans:
            # Matches nothing (Django answers an empty IN without asking the database).
            return Q(**{f"{prefix}pk__in": []})
        q = Q()
        for start, end in self.spans:
            q |= Q(**{f"{prefix}created_at__gte": start, f"{prefix}created_at__lt": end})
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


def _site_ids(scope: DashboardScope, filters: DashboardFilters) -> tuple[int, ...] | None:
    """Regions become site ids up front (one small query): ``site_id IN (...)`` lets PostgreSQL
    use the screening (site, created_at) index, where a join on site.region scanned the whole
    range (2x slower for one region in bench/dashboard_bench.py). None: every site."""
    site = filters.site
    if site is not None:
        # filters_parse already checked the site against the scope; checked again here so that
        # no caller of this selector can read outside its scope.
        allowed = scope.allows_region(site.region) and filters.region in ("", site.region)
        return (site.pk,) if allowed else ()
    if scope.regions is None and not filters.region:
        return None
    sites = Site.objects.all()
    if scope.regions is not None:
        sites = sites.filter(region__in=scope.regions)
    if filters.region:
        sites = sites.filter(region=filters.region)
    return tuple(sites.values_list("id", flat=True))


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


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
    referrals: dict[str, Any] = field(default_factory=dict)
    pharmacy: dict[str, Any] = field(default_factory=dict)
    # Days read from the daily roll-up rather than counted from the raw rows (for the tests and
    # the bench; the figures are the same either way).
    rolled_up_days: int = 0

    @property
    def gradable_rate(self) -> float | None:
        return _rate(self.images_gradable, self.images_total)


_REFERRAL_COUNTS = ("total", _S.CANCELLED, "open", *_REACHED, _S.DECLINED, _S.NO_SHOW)


@dataclass
class _Tally:
    """Counts added up from the roll-up (closed days) and from the raw rows (the other days)."""

    per_day: dict[dt.date, int] = field(default_factory=lambda: defaultdict(int))
    per_triage: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    images_total: int = 0
    images_gradable: int = 0
    results_total: int = 0
    per_class: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    referrals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_REFERRAL_COUNTS, 0))
    # Seconds from first sent to first accepted, one per accepted referral.
    waits: list[float] = field(default_factory=list)


def _fill_days(
    rows: dict[dt.date, int], first: dt.date, last: dt.date, step: int
) -> list[tuple[dt.date, int]]:
    out = []
    day = first
    while day <= last:
        out.append((day, rows.get(day, 0)))
        day += dt.timedelta(days=step)
    return out


def as_date(value: dt.date | dt.datetime) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _screening_counts(sel: Selection, tally: _Tally) -> tuple[int, int]:
    """Per day and per triage from ONE query grouped by (local day, triage): at most 731 x 6 rows
    whatever the number of screenings; weeks and totals are summed from them in Python (one
    scan of the range instead of three, bench/dashboard_bench.py). Returns the id range."""
    tz = timezone.get_current_timezone()
    rows = (
        Screening.objects.filter(sel.q())
        .order_by()
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day", "triage")
        .annotate(n=Count("id"), lo=Min("id"), hi=Max("id"))
        .values_list("day", "triage", "n", "lo", "hi")
    )
    lowest, highest = 0, -1  # an empty id range when there is no screening
    for day, triage, n, lo, hi in rows:
        lowest = lo if highest < 0 else min(lowest, lo)
        highest = max(highest, hi)
        tally.per_day[as_date(day)] += n
        tally.per_triage[triage] += n
    return lowest, highest


def _image_quality(sel: Selection, tally: _Tally) -> None:
    counts = ScreeningImage.objects.filter(sel.q("screening__")).aggregate(
        total=Count("id"), gradable=Count("id", filter=Q(gradable=True))
    )
    tally.images_total += counts["total"]
    tally.images_gradable += counts["gradable"]


def findings_letters(findings: object) -> set[str]:
    """The class letters of an eye result's findings list, each once (as containment counts)."""
    letters = findings if isinstance(findings, list) else []
    return {c for c in letters if isinstance(c, str)}


def _positive_rates(sel: Selection, tally: _Tally) -> None:
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
    for findings, n in groups:
        tally.results_total += n
        for letter in findings_letters(findings):
            tally.per_class[letter] += n


def referral_rows(sel: Selection, **group: Any) -> QuerySet:
    """One row per referral of the selection, with its status and its event history folded in:
    did it ever reach each step (``r_<step>`` > 0), was it cancelled or still open, and when was
    it first sent and first accepted. ``group``: more columns to group by, as expressions (the
    roll-up adds the screening's site and day). Referrals without events count in the total and
    reach no step."""
    flags = {
        f"r_{step}": Count("events__id", filter=Q(events__to_status__in=states))
        for step, states in _REACHED.items()
    }
    return (
        Referral.objects.filter(sel.q("screening__"))
        .order_by()
        .values("id", **group)
        .annotate(
            sent_t=Min("events__created_at", filter=Q(events__to_status=_S.SENT)),
            accepted_t=Min("events__created_at", filter=Q(events__to_status=_S.ACCEPTED)),
            r_declined=Count("events__id", filter=Q(events__to_status=_S.DECLINED)),
            r_no_show=Count("events__id", filter=Q(events__to_status=_S.NO_SHOW)),
            # Counted over the referral's joined rows: > 0 exactly when the status matches.
            r_cancelled=Count("id", filter=Q(status=_S.CANCELLED)),
            r_open=Count("id", filter=~Q(status__in=_CLOSED)),
            **flags,
        )
    )


def _referral_history(sel: Selection, tally: _Tally) -> None:
    """The funnel, the totals and the waits in ONE statement over the referrals in range.

    Inner query (referral_rows), one row per referral; outer query: count the referrals per step
    and collect the waits (first accepted - first sent) of those accepted, for the mean and the
    median in Python: the roll-up adds its own waits to these (a median does not add up).
    Time runs from the first sending: escalation to another hospital or a re-send after a
    decline keeps the clock running, since the patient is still waiting.

    Django cannot aggregate over aggregates, hence the outer SELECT in SQL around the ORM's
    inner query (whose parameters stay parameters): correlated subqueries per referral would cost
    4 index probes per referral, ~1 s at 18,000 referrals."""
    steps = [step for step in _REFERRAL_COUNTS if step != "total"]
    try:
        sql, params = referral_rows(sel).query.sql_with_params()
    except EmptyResultSet:  # no site in the selection (a region without sites): nothing to count
        return
    counted = ", ".join(f"COUNT(*) FILTER (WHERE r_{step} > 0)" for step in steps)
    if _is_postgres():
        wait = "EXTRACT(EPOCH FROM (accepted_t - sent_t))"
        waits = f"ARRAY_AGG({wait}) FILTER (WHERE accepted_t IS NOT NULL AND sent_t IS NOT NULL)"
    else:  # SQLite (a bare `make run`): datetimes are text, no arrays
        wait = "(julianday(accepted_t) - julianday(sent_t)) * 86400.0"
        waits = (
            f"json_group_array({wait}) FILTER (WHERE accepted_t IS NOT NULL AND sent_t IS NOT NULL)"
        )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), {counted}, {waits} FROM ({sql}) AS per_referral", params)  # noqa: S608 - fixed column names; values are parameters
        row = cursor.fetchone()
    for step, n in zip(["total", *steps], row[:-1], strict=True):
        tally.referrals[step] += n
    found = row[-1]
    if isinstance(found, str):
        found = json.loads(found)
    tally.waits.extend(float(w) for w in found or () if w is not None)


def _referral_section(tally: _Tally) -> dict[str, Any]:
    counts, waits = tally.referrals, sorted(tally.waits)
    total = counts["total"]
    steps = [(_S.PROPOSED, total)] + [(step, counts[step]) for step in FUNNEL_STEPS[1:]]
    return {
        "total": total,
        "steps": [RateRow(step, n, total) for step, n in steps],
        "declined": counts[_S.DECLINED],
        "no_show": counts[_S.NO_SHOW],
        "cancelled": counts[_S.CANCELLED],
        "open": counts["open"],
        "mean_to_accept": dt.timedelta(seconds=sum(waits) / len(waits)) if waits else None,
        "median_to_accept": dt.timedelta(seconds=statistics.median(waits)) if waits else None,
    }


def rollup_usable() -> bool:
    """The roll-up is read on PostgreSQL only (it sums the waits with JSONB_AGG); elsewhere every
    day is counted from the raw rows."""
    return _is_postgres()


def _rollup_read(
    site_ids: tuple[int, ...] | None, filters: DashboardFilters, tally: _Tally
) -> set[dt.date]:
    """Add the closed days of the range found in the roll-up to ``tally``; return those days.

    ONE query over RollupDay LEFT JOIN DailySiteStats (the chosen sites only), grouped by day:
    at most 731 rows of sums. A day counts only if its row was computed after the day ended
    (otherwise it misses the day's last hours) and before today: today is always counted from
    the raw rows, so today's figures are exact; an older day may lag the raw rows by one beat of
    dashboard.tasks.dashboard_rollup_refresh (a referral accepted since, for instance)."""
    from django.contrib.postgres.aggregates import JSONBAgg

    today = timezone.localdate()
    last = min(filters.date_to, today - dt.timedelta(days=1))
    if last < filters.date_from:
        return set()
    days = RollupDay.objects.filter(day__gte=filters.date_from, day__lte=last)
    rel = "sites"
    if site_ids is not None:
        days = days.annotate(
            chosen=FilteredRelation("sites", condition=Q(sites__site_id__in=site_ids))
        )
        rel = "chosen"
    rows = (
        days.order_by()
        .values("day", "computed_at")
        .annotate(
            **{name: Coalesce(Sum(f"{rel}__{name}"), 0) for name in COUNT_FIELDS},
            waits=JSONBAgg(f"{rel}__waits"),
        )
    )
    covered = set()
    for row in rows:
        day = row["day"]
        if row["computed_at"] < day_start(day + dt.timedelta(days=1)):
            continue  # computed while the day was still going on: count it from the raw rows
        covered.add(day)
        tally.per_day[day] += row["screenings"]
        for value, name in TRIAGE_FIELDS.items():
            tally.per_triage[value] += row[name]
        tally.images_total += row["images"]
        tally.images_gradable += row["images_gradable"]
        tally.results_total += row["results"]
        for code, name in POSITIVE_FIELDS.items():
            tally.per_class[code] += row[name]
        for key, name in REFERRAL_FIELDS.items():
            tally.referrals[key] += row[name]
        for waits in row["waits"] or ():
            tally.waits.extend(waits or ())  # a JSON null where no site matched the join
    return covered


def _finish(data: DashboardData, tally: _Tally) -> None:
    filters = data.filters
    per_week: dict[dt.date, int] = defaultdict(int)
    for day, n in tally.per_day.items():
        # Weeks start on Monday (ISO, like PostgreSQL's date_trunc('week')).
        per_week[day - dt.timedelta(days=day.weekday())] += n
    data.per_day = _fill_days(tally.per_day, filters.date_from, filters.date_to, 1)
    # The first and last weeks may be partial weeks of the range.
    first_monday = filters.date_from - dt.timedelta(days=filters.date_from.weekday())
    data.per_week = _fill_days(per_week, first_monday, filters.date_to, 7)
    data.screenings_total = sum(tally.per_day.values())
    triaged = sum(tally.per_triage[value] for value in Triage.values)
    data.untriaged = data.screenings_total - triaged
    data.triage = [RateRow(value, tally.per_triage[value], triaged) for value in Triage.values]
    data.images_total, data.images_gradable = tally.images_total, tally.images_gradable
    data.results_total = tally.results_total
    data.positive = [RateRow(c, tally.per_class[c], tally.results_total) for c in CLASS_CODES]


def dashboard_data(
    *, scope: DashboardScope, filters: DashboardFilters, use_rollup: bool = True
) -> DashboardData:
    """Every figure of the dashboard for ``filters`` within ``scope`` (a fixed number of queries).

    Closed days come from the daily roll-up (dashboard.models.DailySiteStats) when it has them;
    today and any day it lacks are counted from the raw rows, and the two are added up.
    ``use_rollup=False`` counts every day from the raw rows (the tests compare the two; the
    bench times both)."""
    data = DashboardData(filters=filters)
    tally = _Tally()
    with transaction.atomic():
        if _is_postgres():
            # PostgreSQL's default random_page_cost (4, for spinning disks) makes it hash-join
            # the whole image/result tables for one site or region rather than probe their
            # screening_id index for the few screenings selected: 150 ms instead of 35 ms for a
            # site's year (bench). 1.1 is the usual value for SSDs and cached data; LOCAL ends
            # with this transaction, so nothing else on the connection is affected.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL random_page_cost = 1.1")
        site_ids = _site_ids(scope, filters)
        covered: set[dt.date] = set()
        # site_ids == (): nothing may be shown; the raw queries answer that without the database.
        if use_rollup and site_ids != () and rollup_usable():
            covered = _rollup_read(site_ids, filters, tally)
        data.rolled_up_days = len(covered)
        days = _fill_days({}, filters.date_from, filters.date_to, 1)
        sel = Selection(day_spans(d for d, _ in days if d not in covered), site_ids)
        if sel.spans:
            sel = replace(sel, id_range=_screening_counts(sel, tally))
            _image_quality(sel, tally)
            _positive_rates(sel, tally)
            _referral_history(sel, tally)
        _finish(data, tally)
        data.referrals = _referral_section(tally)
        data.pharmacy = kiosk_section(scope=scope, filters=filters)
    return data
