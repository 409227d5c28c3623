"""The demo's year of past screenings (seed_demo_history and the other apps' --history parts):
about 200, a realistic mix, referrals and dispenses through their lifecycle, on the dashboard,
fast, and added once."""

from __future__ import annotations

import datetime as dt
import io
import time
from collections import Counter

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from dashboard.filters import filters_parse
from dashboard.selectors import dashboard_data, dashboard_scope
from pharmacy.management.commands.reconcile_stock import find_mismatches
from pharmacy.models import Dispense, Prescription, StockLot, StockMovement
from referrals.models import Referral, ReferralEvent
from screening.management.commands.seed_demo_history import HISTORY_MODEL_VERSION
from screening.models import EyeResult, Patient, Screening, ScreeningImage

pytestmark = pytest.mark.django_db

HISTORY = (
    ("seed_demo_history",),
    ("seed_demo_pharmacy", "--history"),
    ("seed_demo_referrals", "--history"),
)
MODELS = (
    Patient,
    Screening,
    ScreeningImage,
    EyeResult,
    Referral,
    ReferralEvent,
    Prescription,
    Dispense,
    StockLot,
    StockMovement,
)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def test_a_year_of_history_is_seeded_once_fast_and_shows_on_the_dashboard():
    call_command("seed_demo", "--no-screenings", stdout=io.StringIO())
    started = time.monotonic()
    for args in HISTORY:
        call_command(*args, stdout=io.StringIO())
    since = timezone.localdate() - dt.timedelta(days=372)
    call_command("dashboard_rollup", "--from", since.isoformat(), stdout=io.StringIO())
    assert time.monotonic() - started < 20

    history = Screening.objects.filter(model_version=HISTORY_MODEL_VERSION)
    assert 190 <= history.count() <= 215
    now = timezone.now()
    assert not history.filter(created_at__gt=now).exists()
    assert not history.filter(created_at__lt=now - dt.timedelta(days=367)).exists()
    assert set(history.values_list("site__name", flat=True)) == {"정선군보건소", "신안군보건소"}
    assert set(history.values_list("health_worker__username", flat=True)) == {"chw", "chw2"}
    mix = Counter(history.values_list("triage", flat=True))
    assert set(mix) == {"normal", "medication", "referable", "urgent", "ungradable"}
    assert 0.35 < mix["normal"] / history.count() < 0.6
    assert 0.15 < (mix["referable"] + mix["urgent"]) / history.count() < 0.4
    # Spread over the year, not bunched: screenings in at least 10 of the last 12 months.
    months = {(d.year, d.month) for d in history.values_list("created_at", flat=True)}
    assert len(months) >= 10

    statuses = Counter(Referral.objects.values_list("status", flat=True))
    assert {"sent", "accepted", "completed"} <= set(statuses), statuses
    assert statuses["no_show"] + statuses["declined"] > 0, statuses
    assert Dispense.objects.filter(status=Dispense.Status.COMPLETED).count() >= 10
    assert Prescription.objects.filter(status=Prescription.Status.DISPENSED).exists()
    assert find_mismatches() == []  # the stock ledger adds up with the history's dispenses
    # Every sent referral is within the escalation delay: the beat has nothing to escalate.
    from referrals.services import referrals_overdue

    assert referrals_overdue(now=now) == []

    # The public-health dashboard (강원 and 전남) shows the year, from the roll-up, and the
    # kiosks of both regions with their dispenses.
    scope = dashboard_scope(user=User.objects.get(username="publichealth"))
    filters = filters_parse(params={"date_from": since.isoformat()}, scope=scope)
    data = dashboard_data(scope=scope, filters=filters)
    assert data.screenings_total >= 190 and data.rolled_up_days > 300
    assert data.referrals["total"] > 40
    # Hospitals answered within hours to days (sooner when urgent), as recorded by the events.
    assert dt.timedelta(hours=1) < data.referrals["median_to_accept"] < dt.timedelta(days=2)
    kiosks = {k.kiosk_id for k in data.pharmacy["kiosks"]}
    assert {"K-DEMO-1", "K-DEMO-3"} <= kiosks and "K-DEMO-4" not in kiosks
    assert data.pharmacy["dispenses"]["completed"] >= 10
    raw = dashboard_data(scope=scope, filters=filters, use_rollup=False)
    assert (raw.screenings_total, raw.referrals["total"]) == (
        data.screenings_total,
        data.referrals["total"],
    )

    # The whole demo, twice: the second run adds nothing.
    call_command("seed_demo", stdout=io.StringIO())
    before = counts()
    call_command("seed_demo", stdout=io.StringIO())
    assert counts() == before
