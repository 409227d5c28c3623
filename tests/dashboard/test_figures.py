"""Every figure of the dashboard on the hand-built world of conftest.py (numbers worked out by hand
in its docstring), with and without filters."""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard.scope import DashboardFilters, DashboardScope
from dashboard.selectors import dashboard_data
from tests.dashboard.conftest import DATE_FROM, DATE_TO

ALL = DashboardScope(regions=None)


def _data(world, scope=ALL, **filters):
    return dashboard_data(
        scope=scope, filters=DashboardFilters(date_from=DATE_FROM, date_to=DATE_TO, **filters)
    )


def _counts(rows):
    return {row.key: row.count for row in rows}


def test_screenings_per_day_count_local_days_and_leave_out_drafts(world):
    data = _data(world)
    assert data.screenings_total == 8
    per_day = dict(data.per_day)
    assert len(per_day) == 14 and min(per_day) == DATE_FROM and max(per_day) == DATE_TO
    # s1 at 00:30 in Seoul is still 03-01 in UTC: it counts on 03-02; s0 (23:30 on 03-01) does not.
    assert {d.day: n for d, n in per_day.items() if n} == {2: 2, 3: 1, 4: 1, 9: 2, 10: 1, 15: 1}


def test_screenings_per_week_start_on_monday(world):
    data = _data(world)
    assert data.per_week == [(dt.date(2026, 3, 2), 4), (dt.date(2026, 3, 9), 4)]


def test_triage_distribution_counts_triaged_screenings(world):
    data = _data(world)
    assert _counts(data.triage) == {
        "normal": 2,
        "medication": 1,
        "referable": 2,
        "urgent": 1,
        "ungradable": 1,
    }
    assert data.untriaged == 1
    assert all(row.total == 7 for row in data.triage)


def test_gradable_rate_is_the_share_of_gradable_images(world):
    data = _data(world)
    # s1 2/2, s2 1/2, s3 1/1, s4 2/2, s5 0/2, s7 1/1
    assert (data.images_gradable, data.images_total) == (7, 10)
    assert data.gradable_rate == pytest.approx(0.7)


def test_positive_rate_per_class_counts_eye_results_with_the_class(world):
    data = _data(world)
    assert data.results_total == 8
    assert _counts(data.positive) == {
        "N": 3,
        "D": 3,
        "G": 1,
        "C": 1,
        "A": 1,
        "H": 1,
        "M": 0,
        "O": 0,
    }
    d = next(row for row in data.positive if row.key == "D")
    assert d.rate == pytest.approx(3 / 8)


def test_referral_funnel_follows_the_event_history(world):
    ref = _data(world).referrals
    assert ref["total"] == 4
    assert [(row.key, row.count) for row in ref["steps"]] == [
        ("proposed", 4),
        ("sent", 3),
        ("accepted", 3),
        ("attended", 1),
        ("completed", 1),
    ]
    assert (ref["declined"], ref["no_show"], ref["cancelled"], ref["open"]) == (1, 1, 1, 2)


def test_time_to_acceptance_runs_from_first_sending_to_first_acceptance(world):
    ref = _data(world).referrals
    # r1 10 h, r2 30 h (a decline and a resend in between), r4 60 h; r3 was never accepted.
    assert ref["median_to_accept"] == dt.timedelta(hours=30)
    assert ref["mean_to_accept"] == dt.timedelta(hours=(10 + 30 + 60) / 3)


def test_kiosk_stock_counts_unexpired_boxes_and_dispenses_in_range(world):
    ph = _data(world).pharmacy
    kiosks = {k.kiosk_id: (k.stock, k.dispensed, k.failed) for k in ph["kiosks"]}
    assert kiosks == {"K1": (5, 2, 1), "K2": (2, 1, 0)}
    assert [k.kiosk_id for k in ph["kiosks"]] == ["K2", "K1"]  # emptiest first
    assert ph["stock_boxes"] == 7
    assert ph["dispenses"] == {"completed": 3, "failed": 1, "reserved": 0}


def test_site_filter_narrows_every_section(world):
    data = _data(world, site=world.site_a)
    assert data.screenings_total == 3
    assert _counts(data.triage)["urgent"] == 1
    assert (data.images_gradable, data.images_total) == (4, 5)
    assert _counts(data.positive)["D"] == 2
    assert data.referrals["total"] == 2
    assert [k.kiosk_id for k in data.pharmacy["kiosks"]] == ["K1"]


def test_region_filter_narrows_every_section(world):
    data = _data(world, region="Gangwon")
    assert data.screenings_total == 2
    assert _counts(data.positive) == {
        "N": 0,
        "D": 1,
        "G": 0,
        "C": 0,
        "A": 1,
        "H": 0,
        "M": 0,
        "O": 0,
    }
    assert data.referrals["total"] == 1
    assert data.referrals["steps"][1].count == 0
    assert data.referrals["median_to_accept"] is None
    assert [k.kiosk_id for k in data.pharmacy["kiosks"]] == ["K2"]


def test_scope_limits_data_even_without_filters(world):
    data = _data(world, scope=DashboardScope(regions=("Gangwon",)))
    assert data.screenings_total == 2
    assert data.pharmacy["stock_boxes"] == 2


def test_date_range_moves_the_window(world):
    data = dashboard_data(
        scope=ALL,
        filters=DashboardFilters(date_from=dt.date(2026, 2, 1), date_to=dt.date(2026, 3, 1)),
    )
    assert data.screenings_total == 2  # s8 and s0
    assert data.referrals["total"] == 1
    assert data.referrals["median_to_accept"] == dt.timedelta(hours=1)


def test_empty_selection_has_no_rates_rather_than_a_division_by_zero(db):
    data = dashboard_data(scope=ALL, filters=DashboardFilters(date_from=DATE_FROM, date_to=DATE_TO))
    assert data.screenings_total == 0
    assert data.gradable_rate is None
    assert all(row.rate is None for row in data.positive)
    assert data.referrals["total"] == 0


def test_the_selector_runs_a_fixed_number_of_queries(world, django_assert_num_queries):
    # The daily roll-up (empty here: every day is counted raw), screenings by day and triage,
    # images, results, the referral section (one statement), kiosks, dispense totals, stock
    # total: 8, whatever the number of rows; plus the transaction's SET LOCAL and, inside the
    # test's transaction, its SAVEPOINT and RELEASE. A region (chosen or from the scope) adds
    # the lookup of its site ids. With the roll-up: tests/dashboard/test_rollup.py.
    with django_assert_num_queries(11):
        _data(world)
    with django_assert_num_queries(11):
        _data(world, site=world.site_a, region="Seoul")
    with django_assert_num_queries(12):
        _data(world, region="Seoul")
    with django_assert_num_queries(12):
        _data(world, scope=DashboardScope(regions=("Gangwon",)))


def test_a_site_outside_the_scope_shows_nothing_even_if_passed_straight_to_the_selector(world):
    data = _data(world, scope=DashboardScope(regions=("Gangwon",)), site=world.site_a)
    assert data.screenings_total == 0
    assert data.referrals["total"] == 0


def test_a_screening_backdated_into_the_range_counts_with_its_results(world):
    # Ids need not follow created_at (an import, a fixed clock): the newest row, dated inside
    # the range, must still bring its eye results and referral along.
    from tests.dashboard.conftest import _referral, _screening, at

    late = _screening(
        world.site_b,
        at(3, 5, 9),
        triage="referable",
        findings=["M"],
        images=(True,),
        results=(["M"],),
    )
    _referral(late, "sent", [("sent", 0)])
    data = _data(world)
    assert data.screenings_total == 9
    assert _counts(data.positive)["M"] == 1
    assert data.referrals["total"] == 5
