"""The daily roll-up: the dashboard read from it (closed days) plus the raw rows (today and days
not rolled up) shows exactly what the raw rows alone show, for every filter and scope; it is
kept by an idempotent service, a beat task and a command."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from dashboard.models import (
    COUNT_FIELDS,
    POSITIVE_FIELDS,
    TRIAGE_FIELDS,
    DailySiteStats,
    RollupDay,
)
from dashboard.scope import DashboardFilters, DashboardScope, day_start
from dashboard.selectors import dashboard_data
from dashboard.services import rollup_days_refresh, rollup_recent_refresh
from dashboard.tasks import dashboard_rollup_refresh
from referrals.models import ReferralEvent, ReferralStatus
from screening.models import CLASS_CODES, Screening, Triage
from tests.dashboard.conftest import DATE_FROM, DATE_TO, _referral, _screening
from tests.dashboard.test_pages import _csv, _public_health, _row
from tests.factories import SiteFactory

ALL = DashboardScope(regions=None)


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]


def _figures(data) -> dict:
    """Every number the page shows, as plain values (the kiosk section is not rolled up)."""
    ref = data.referrals
    return {
        "total": data.screenings_total,
        "per_day": data.per_day,
        "per_week": data.per_week,
        "triage": [(r.key, r.count, r.total) for r in data.triage],
        "untriaged": data.untriaged,
        "images": (data.images_total, data.images_gradable),
        "positive": [(r.key, r.count, r.total) for r in data.positive],
        "referrals": None
        if ref is None
        else {
            **{k: v for k, v in ref.items() if k != "steps"},
            "steps": [(r.key, r.count) for r in ref["steps"]],
        },
    }


def _both(scope=ALL, **filters):
    f = DashboardFilters(**filters)
    rolled = dashboard_data(scope=scope, filters=f)
    raw = dashboard_data(scope=scope, filters=f, use_rollup=False)
    assert raw.rolled_up_days == 0
    return rolled, raw


@pytest.fixture
def rich(world):
    """The hand-built world, a fourth site in a third region, and screenings yesterday and
    today (with images, results and a referral): several sites, regions and days."""
    today = timezone.localdate()
    yesterday = today - dt.timedelta(days=1)
    world.site_d = SiteFactory(name="D site", region="Jeju")
    noon_yesterday = day_start(yesterday) + dt.timedelta(hours=12)
    world.y1 = _screening(
        world.site_a,
        noon_yesterday,
        triage="referable",
        findings=["D"],
        images=(True, True),
        results=(["D"], ["N"]),
    )
    world.y2 = _screening(
        world.site_d, noon_yesterday, triage="normal", images=(True,), results=(["N"],)
    )
    _referral(world.y1, ReferralStatus.ACCEPTED, [("sent", 0), ("accepted", 2)])
    # Today: a few minutes ago, so that it is today whenever the test runs.
    world.t1 = _screening(
        world.site_c,
        timezone.now() - dt.timedelta(seconds=5),
        triage="urgent",
        findings=["G"],
        images=(True, False),
        results=(["G"],),
    )
    world.today, world.yesterday = today, yesterday
    world.long_range = {"date_from": DATE_FROM - dt.timedelta(days=20), "date_to": today}
    return world


def test_every_triage_value_and_class_has_its_column():
    names = {f.name for f in DailySiteStats._meta.get_fields()}
    assert set(TRIAGE_FIELDS) == set(Triage.values)
    assert set(POSITIVE_FIELDS) == set(CLASS_CODES)
    assert set(COUNT_FIELDS) <= names


def test_the_beat_runs_the_refresh_task():
    entry = settings.CELERY_BEAT_SCHEDULE["dashboard-rollup"]
    assert entry["task"] == dashboard_rollup_refresh.name
    assert 0 < entry["schedule"] <= 3600


def test_rolled_up_days_show_the_same_figures_as_the_raw_rows(rich):
    rollup_days_refresh(days=_days(rich.long_range["date_from"], rich.today))
    regions = ("Seoul", "Gangwon", "Jeju")
    cases = [
        (ALL, {}),
        (ALL, {"region": "Seoul"}),
        (ALL, {"region": "Jeju"}),
        (ALL, {"site": rich.site_a}),
        (ALL, {"site": rich.site_c, "region": "Gangwon"}),
        (DashboardScope(regions=("Gangwon",)), {}),
        (DashboardScope(regions=("Gangwon", "Jeju")), {"region": "Jeju"}),
        (DashboardScope(regions=regions), {"site": rich.site_b}),
    ]
    ranges = [
        {"date_from": DATE_FROM, "date_to": DATE_TO},
        rich.long_range,
        {"date_from": rich.yesterday, "date_to": rich.today},
        {"date_from": dt.date(2026, 3, 9), "date_to": dt.date(2026, 3, 9)},
    ]
    for scope, filters in cases:
        for dates in ranges:
            rolled, raw = _both(scope, **dates, **filters)
            assert _figures(rolled) == _figures(raw), (scope, filters, dates)
            # Every closed day came from the roll-up; today never does.
            closed = [d for d in _days(dates["date_from"], dates["date_to"]) if d < rich.today]
            assert rolled.rolled_up_days == len(closed)
    # ... and those are the numbers worked out by hand in conftest.py, plus the new days.
    rolled, _raw = _both(**rich.long_range)
    assert rolled.screenings_total == 2 + 8 + 2 + 1  # s8 and s0, March, yesterday, today
    assert rolled.referrals["total"] == 1 + 4 + 1
    assert rolled.referrals["median_to_accept"] == dt.timedelta(hours=10)  # 1, 2, 10, 30, 60
    gangwon, _raw = _both(
        DashboardScope(regions=("Gangwon",)), date_from=DATE_FROM, date_to=DATE_TO
    )
    assert gangwon.screenings_total == 2


def test_todays_new_screenings_count_at_once_without_a_refresh(rich):
    rollup_days_refresh(days=_days(rich.long_range["date_from"], rich.today))
    before, _raw = _both(**rich.long_range)
    later = _screening(
        rich.site_d,
        timezone.now() - dt.timedelta(seconds=1),
        triage="referable",
        findings=["A"],
        images=(True,),
        results=(["A"],),
    )
    _referral(later, ReferralStatus.SENT, [("sent", 0)])
    rolled, raw = _both(**rich.long_range)
    assert _figures(rolled) == _figures(raw)
    assert rolled.screenings_total == before.screenings_total + 1
    assert dict(rolled.per_day)[rich.today] == 2
    assert {r.key: r.count for r in rolled.positive}["A"] == 2  # s7 in March, and this one
    assert rolled.referrals["total"] == before.referrals["total"] + 1


def test_a_closed_day_is_read_from_the_rollup_not_recounted(rich):
    rollup_days_refresh(days=[rich.yesterday])
    # Tampering with the roll-up shows on the page: the day is not counted again from the rows.
    DailySiteStats.objects.filter(day=rich.yesterday, site=rich.site_d).update(
        screenings=40, triage_normal=40
    )
    rolled, raw = _both(date_from=rich.yesterday, date_to=rich.yesterday)
    assert rolled.rolled_up_days == 1
    assert (rolled.screenings_total, raw.screenings_total) == (41, 2)


def test_a_day_rolled_up_before_it_ended_is_counted_from_the_raw_rows(rich):
    # As if the beat had run at 23:50 yesterday and not since: the last ten minutes are missing.
    rollup_days_refresh(days=[rich.yesterday])
    RollupDay.objects.filter(day=rich.yesterday).update(
        computed_at=day_start(rich.today) - dt.timedelta(minutes=10)
    )
    DailySiteStats.objects.filter(day=rich.yesterday).update(screenings=0, triage_normal=0)
    rolled, raw = _both(date_from=rich.yesterday, date_to=rich.today)
    assert rolled.rolled_up_days == 0
    assert _figures(rolled) == _figures(raw)
    assert rolled.screenings_total == 3


def test_refreshing_twice_writes_the_same_rows(rich):
    days = _days(DATE_FROM, rich.today)
    rollup_days_refresh(days=days)
    fields = ["day_id", "site_id", "waits", *COUNT_FIELDS]
    first = sorted(DailySiteStats.objects.values_list(*fields))
    rollup_days_refresh(days=days)
    assert sorted(DailySiteStats.objects.values_list(*fields)) == first
    assert RollupDay.objects.count() == len(days)
    # A site with nothing on a day has no row; the day row says the day was counted.
    assert not DailySiteStats.objects.filter(day=dt.date(2026, 3, 5)).exists()
    assert RollupDay.objects.filter(day=dt.date(2026, 3, 5)).exists()
    # One row per site and day with screenings: 6 in March, A and D yesterday, C today.
    assert DailySiteStats.objects.count() == len(first) == 6 + 2 + 1
    row = DailySiteStats.objects.get(day=dt.date(2026, 3, 2), site=rich.site_a)
    assert (row.screenings, row.triage_normal, row.triage_referable) == (2, 1, 1)
    assert (row.images, row.images_gradable, row.results, row.positive_d) == (4, 3, 4, 2)
    assert (row.referrals, row.reached_accepted, row.waits) == (1, 1, [36000.0])


def test_the_beat_recounts_old_days_whose_referrals_moved(rich):
    rollup_days_refresh(days=_days(DATE_FROM, rich.today))
    # r3 (on s7, a March screening) gains a "sent" event today: its day's funnel changes.
    ReferralEvent.objects.create(
        referral=rich.r3, kind="sent", from_status="proposed", to_status="sent"
    )
    stale, raw = _both(date_from=DATE_FROM, date_to=DATE_TO)
    # Until the next beat the closed day shows the old count...
    assert (stale.referrals["steps"][1].count, raw.referrals["steps"][1].count) == (3, 4)
    days = rollup_recent_refresh()
    assert rich.s7.created_at.astimezone(timezone.get_current_timezone()).date() in days
    rolled, raw = _both(date_from=DATE_FROM, date_to=DATE_TO)
    assert _figures(rolled) == _figures(raw)
    assert rolled.rolled_up_days == 14


def test_the_beat_fills_recent_gaps_but_no_old_history(rich):
    days = rollup_recent_refresh()
    assert rich.yesterday in days and rich.today in days
    assert RollupDay.objects.filter(day=rich.today - dt.timedelta(days=30)).exists()
    assert not RollupDay.objects.filter(day__lte=DATE_TO).exists()  # March: the command's job
    rolled, raw = _both(**rich.long_range)
    assert _figures(rolled) == _figures(raw)


def test_the_command_and_the_task_rebuild_a_range(rich):
    call_command("dashboard_rollup", "--from", "2026-03-01", "--to", "2026-03-15")
    assert RollupDay.objects.filter(day__range=(dt.date(2026, 3, 1), DATE_TO)).count() == 15
    assert RollupDay.objects.count() == 15
    dashboard_rollup_refresh(date_from="2026-02-01", date_to="2026-02-28")
    assert RollupDay.objects.count() == 15 + 28
    rolled, raw = _both(date_from=dt.date(2026, 2, 1), date_to=DATE_TO)
    assert rolled.rolled_up_days == 28 + 15
    assert _figures(rolled) == _figures(raw)


@pytest.mark.parametrize(
    "args",
    [
        ["--from", "2026-02-30"],
        ["--from", "yesterday"],
        ["--from", "2026-03-10", "--to", "2026-03-01"],
        ["--to", "2026-03-01"],
        ["--from", "1999-12-31"],
    ],
)
def test_the_command_refuses_bad_dates_and_writes_nothing(db, args):
    with pytest.raises(CommandError):
        call_command("dashboard_rollup", *args)
    assert not RollupDay.objects.exists()


def test_the_rollup_keeps_the_region_scope_on_the_page(client, rich):
    rollup_days_refresh(days=_days(DATE_FROM, rich.today))
    _public_health(client, ["Gangwon"])
    rows = _csv(
        client.get(reverse("dashboard:export_csv"), {"date_from": DATE_FROM, "date_to": rich.today})
    )
    # s7 and s9 in March, t1 today: nothing of Seoul's or Jeju's rolled-up days.
    assert _row(rows, "summary", "screenings")[3] == "3"
    other = client.get(reverse("dashboard:index"), {"site": rich.site_a.pk})
    assert other.status_code == 404
    data = dashboard_data(
        scope=DashboardScope(regions=("Gangwon",)),
        filters=DashboardFilters(date_from=DATE_FROM, date_to=rich.yesterday, site=rich.site_a),
    )
    assert data.screenings_total == 0 and data.referrals["total"] == 0


def test_a_rolled_up_range_needs_fewer_queries(rich, django_assert_num_queries):
    rollup_days_refresh(days=_days(DATE_FROM, rich.today))
    # Every day closed: SET LOCAL, the roll-up, the three kiosk queries (+ SAVEPOINT, RELEASE).
    with django_assert_num_queries(7):
        dashboard_data(scope=ALL, filters=DashboardFilters(date_from=DATE_FROM, date_to=DATE_TO))
    # With today: the raw screenings, images, results and referrals of today as well.
    with django_assert_num_queries(11):
        dashboard_data(scope=ALL, filters=DashboardFilters(date_from=DATE_FROM, date_to=rich.today))
    with django_assert_num_queries(12):
        dashboard_data(
            scope=ALL,
            filters=DashboardFilters(date_from=DATE_FROM, date_to=rich.today, region="Seoul"),
        )


def test_drafts_never_reach_the_rollup(rich):
    rollup_days_refresh(days=[dt.date(2026, 3, 9)])
    row = DailySiteStats.objects.get(day=dt.date(2026, 3, 9), site=rich.site_b)
    # s5 and s6; d1 (a draft with two images and two results) is left out.
    assert (row.screenings, row.images, row.results) == (2, 2, 0)
    assert Screening.objects.filter(site=rich.site_b, status="draft").count() == 1
