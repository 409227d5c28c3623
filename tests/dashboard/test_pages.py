"""The dashboard pages: who may see them, what the filters accept, the CSV, the charts."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from dashboard.models import DashboardAccess
from tests.dashboard.conftest import RANGE
from tests.factories import AdminFactory, HealthWorkerFactory, UserFactory
from tests.pharmacy.factories import PharmacistFactory
from tests.referrals.factories import HospitalStaffFactory

INDEX = reverse("dashboard:index")
EXPORT = reverse("dashboard:export_csv")


@pytest.fixture
def admin_client(client, db):
    client.force_login(AdminFactory())
    return client


def _public_health(client, regions):
    user = UserFactory()
    DashboardAccess.objects.create(user=user, regions=regions)
    client.force_login(user)
    return client


def _csv(response) -> list[list[str]]:
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def _row(rows, section, key):
    return next(r for r in rows if r[0] == section and r[1] == key)


# --- access ---------------------------------------------------------------------------------


def test_anonymous_user_is_sent_to_sign_in(client, db):
    response = client.get(INDEX)
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


@pytest.mark.parametrize(
    "factory", [HealthWorkerFactory, PharmacistFactory, HospitalStaffFactory, UserFactory]
)
def test_other_roles_without_dashboard_access_get_403(client, world, factory):
    client.force_login(factory())
    assert client.get(INDEX, RANGE).status_code == 403
    response = client.get(EXPORT, RANGE)
    assert response.status_code == 403
    assert b"Seoul" not in response.content


def test_malformed_access_row_grants_nothing(client, world):
    _public_health(client, "Seoul")  # a string, not a list: fail closed
    assert client.get(INDEX, RANGE).status_code == 403


def test_public_health_staff_see_only_their_regions(client, world):
    _public_health(client, ["Gangwon"])
    rows = _csv(client.get(EXPORT, RANGE))
    assert _row(rows, "summary", "screenings")[3] == "2"
    assert {r[1] for r in rows if r[0] == "kiosk_stock"} == {"total", "K2"}
    page = client.get(INDEX, RANGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'<option value="{world.site_c.pk}"' in html
    assert f'<option value="{world.site_a.pk}"' not in html  # not even in the site filter
    assert world.site_c.name_en in html  # the English name for an English reader


def test_public_health_staff_asking_for_another_region_or_its_site_get_404(client, world):
    _public_health(client, ["Gangwon"])
    assert client.get(INDEX, {**RANGE, "region": "Seoul"}).status_code == 404
    assert client.get(INDEX, {**RANGE, "site": world.site_a.pk}).status_code == 404
    assert client.get(EXPORT, {**RANGE, "site": world.site_a.pk}).status_code == 404
    assert client.get(INDEX, {**RANGE, "site": world.site_c.pk}).status_code == 200


def test_public_health_staff_with_no_regions_listed_see_everything(client, world):
    _public_health(client, [])
    rows = _csv(client.get(EXPORT, RANGE))
    assert _row(rows, "summary", "screenings")[3] == "8"


# --- filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"date_from": "2026-13-01"}, "is not a date"),
        ({"date_from": "yesterday"}, "is not a date"),
        ({"date_to": "0001-01-01"}, "out of range"),
        ({"date_from": "2026-03-15", "date_to": "2026-03-01"}, "must not be after"),
        ({"date_from": "2020-01-01", "date_to": "2026-03-01"}, "at most 731 days"),
        ({"site": "abc"}, "Choose a site"),
        ({"site": "1" * 40}, "Choose a site"),
        ({"region": "x" * 101}, "Unknown region"),
    ],
)
def test_bad_filter_input_is_a_400_with_a_message(admin_client, world, params, message):
    response = admin_client.get(INDEX, params)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert admin_client.get(EXPORT, params).status_code == 400


def test_site_outside_the_chosen_region_is_a_400(admin_client, world):
    response = admin_client.get(INDEX, {**RANGE, "site": world.site_c.pk, "region": "Seoul"})
    assert response.status_code == 400


def test_a_region_without_sites_shows_zeros(admin_client, world):
    page = admin_client.get(INDEX, {**RANGE, "region": "Nowhere"})
    assert page.status_code == 200
    assert page.context["data"].screenings_total == 0
    assert page.context["data"].referrals["total"] == 0
    assert admin_client.get(EXPORT, {**RANGE, "region": "Nowhere"}).status_code == 200


def test_unknown_site_is_a_404(admin_client, world):
    assert admin_client.get(INDEX, {**RANGE, "site": 987654}).status_code == 404


def test_filters_apply_to_the_page(admin_client, world):
    page = admin_client.get(INDEX, {**RANGE, "site": world.site_a.pk})
    assert page.status_code == 200
    data = page.context["data"]
    assert data.screenings_total == 3
    assert page.context["filters"].site == world.site_a


def test_no_dates_default_to_the_last_twelve_weeks(admin_client, world):
    page = admin_client.get(INDEX)
    assert page.status_code == 200
    filters = page.context["filters"]
    assert (filters.date_to - filters.date_from).days == 83


# --- rendering ------------------------------------------------------------------------------


def test_page_draws_accessible_svg_charts_with_table_alternatives(admin_client, world):
    html = admin_client.get(INDEX, RANGE).content.decode()
    # Per day, per week, triage, positive rate, funnel: each drawn wide and narrow (a phone).
    assert html.count('role="img"') == 10
    for chart_id in ("chart-day", "chart-week", "chart-triage", "chart-positive", "funnel"):
        for view in (chart_id, f"{chart_id}-narrow"):
            assert f'aria-labelledby="{view}-title {view}-desc"' in html
            assert f'<title id="{view}-title">' in html
    assert html.count("<details>") == 5
    assert html.count('<div class="chart-scroll" tabindex="0">') == 5  # keyboard can scroll
    assert "<script" not in html.split("<main", 1)[1]  # no chart library
    assert "37.5%" in html  # D positive rate, 3 of 8 results
    assert "30.0 hours" in html  # median time to acceptance
    assert "28.6%" in html  # 2 of 7 triaged are normal: rounded, not truncated to 28.5


def test_page_renders_in_korean(client, world):
    user = AdminFactory(preferred_language="ko")
    client.force_login(user)
    response = client.get(INDEX, RANGE, HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 200
    assert '<html lang="ko">' in response.content.decode()


def test_page_query_count_does_not_grow_with_the_data(
    admin_client, world, django_assert_max_num_queries
):
    # Session, user and OTP device, sites for the filter, 10 aggregate queries, the site lookup
    # when filtering, and the audit middleware's chained insert (~7 with savepoints and the
    # session save): 22 today. The ceiling leaves 2 for sign-in machinery; an N+1 over kiosks,
    # days or sites would blow it at once.
    with django_assert_max_num_queries(24):
        assert admin_client.get(INDEX, RANGE).status_code == 200
    with django_assert_max_num_queries(25):
        assert admin_client.get(INDEX, {**RANGE, "site": world.site_a.pk}).status_code == 200


# --- CSV ------------------------------------------------------------------------------------


def test_csv_export_holds_the_aggregates(admin_client, world):
    response = admin_client.get(EXPORT, RANGE)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert (
        response["Content-Disposition"]
        == 'attachment; filename="eyebridge-dashboard-20260302-20260315.csv"'
    )
    assert response["Cache-Control"] == "no-store"
    rows = _csv(response)
    assert rows[0] == ["section", "key", "label", "value", "denominator", "rate"]
    assert _row(rows, "filter", "date_from")[3] == "2026-03-02"
    assert _row(rows, "summary", "screenings")[3] == "8"
    assert _row(rows, "summary", "gradable_images")[3:] == ["7", "10", "0.7000"]
    assert _row(rows, "screenings_per_day", "2026-03-02")[3] == "2"
    assert len([r for r in rows if r[0] == "screenings_per_day"]) == 14
    assert _row(rows, "screenings_per_week", "2026-03-09")[3] == "4"
    assert _row(rows, "triage", "referable")[3:] == ["2", "7", "0.2857"]
    assert _row(rows, "triage", "pending")[3] == "1"
    assert _row(rows, "positive_rate", "D")[3:] == ["3", "8", "0.3750"]
    assert _row(rows, "referral_funnel", "accepted")[3:] == ["3", "4", "0.7500"]
    assert _row(rows, "time_to_acceptance", "median_hours")[3] == "30.00"
    assert _row(rows, "time_to_acceptance", "mean_hours")[3] == "33.33"
    assert _row(rows, "dispenses", "completed")[3] == "3"
    assert _row(rows, "kiosk_stock", "K1")[3] == "5"


def test_csv_export_neutralises_spreadsheet_formulas(admin_client, world):
    rows = _csv(admin_client.get(EXPORT, RANGE))
    label = _row(rows, "kiosk_stock", "K1")[2]
    assert label.startswith("'=HYPERLINK")


def test_csv_export_follows_the_filters(admin_client, world):
    rows = _csv(admin_client.get(EXPORT, {**RANGE, "region": "Seoul"}))
    assert _row(rows, "summary", "screenings")[3] == "6"
    assert _row(rows, "filter", "region")[3] == "Seoul"


def test_access_regions_must_be_a_list_of_names(db):
    from django.core.exceptions import ValidationError

    access = DashboardAccess(user=UserFactory(), regions="Seoul")
    with pytest.raises(ValidationError):
        access.full_clean()
    DashboardAccess(user=UserFactory(), regions=["Seoul"]).full_clean()


def test_csv_export_is_recorded_in_the_audit_trail_as_an_export(admin_client, world):
    from accounts.models import AuditEvent

    admin_client.get(EXPORT, {**RANGE, "region": "Seoul"})
    event = AuditEvent.objects.filter(url_name="dashboard:export_csv").latest("id")
    assert event.action == "export"
    assert event.object_type == "dashboard"
    assert event.status_code == 200
    assert event.object_ids == ["date_from=2026-03-02", "date_to=2026-03-15", "region=Seoul"]
