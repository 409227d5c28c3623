"""The pharmacy's standing alerts on the beat: low stock, expiring lots, offline kiosks; raised
once until resolved, resolved when the condition goes, raised again when it comes back."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from accounts.models import Alert, Notification, NotificationKind
from accounts.notifications import notification_preferences_update
from config.celery import app as celery_app
from pharmacy.alerts import pharmacy_alerts_check
from pharmacy.models import Kiosk, StockMovement
from pharmacy.services import kiosk_heartbeat, stock_adjust
from pharmacy.tasks import pharmacy_alerts_check as check_task
from tests.pharmacy.conftest import at_once
from tests.pharmacy.factories import PharmacistFactory, PharmacyFactory, kiosk_for, stock

pytestmark = pytest.mark.django_db
K = NotificationKind


def open_alerts(kind: str) -> list[Alert]:
    return list(Alert.objects.filter(kind=kind, resolved_at__isnull=True))


def notified(user, kind: str) -> int:
    return Notification.objects.filter(recipient=user, kind=kind).count()


@pytest.fixture
def online_kiosk(kiosk):
    kiosk_heartbeat(kiosk=kiosk, info={})
    return kiosk


@pytest.fixture(autouse=True)
def _levels(settings):
    settings.PHARMACY_LOW_STOCK_THRESHOLD = 3
    settings.PHARMACY_EXPIRY_WARNING_DAYS = 30
    settings.PHARMACY_KIOSK_OFFLINE_MINUTES = 15


def test_the_check_is_on_the_beat():
    entries = [e["task"] for e in django_settings.CELERY_BEAT_SCHEDULE.values()]
    assert "pharmacy.tasks.pharmacy_alerts_check" in entries
    celery_app.loader.import_default_modules()  # what a worker imports at start
    assert "pharmacy.tasks.pharmacy_alerts_check" in celery_app.tasks


def test_low_stock_is_raised_once_when_the_check_runs_twice(pharmacist, online_kiosk, medication):
    stock(online_kiosk, medication, 2)
    check_task.apply()  # the beat's task
    check_task.apply()
    [alert] = open_alerts(K.LOW_STOCK)
    assert alert.subject_key == (
        f"pharmacy:{online_kiosk.pharmacy_id}:kiosk:{online_kiosk.pk}:medication:{medication.pk}"
    )
    assert notified(pharmacist, K.LOW_STOCK) == 1
    notification = Notification.objects.get(recipient=pharmacist, kind=K.LOW_STOCK)
    assert notification.link == "/pharmacy/stock/"
    assert notification.params["quantity"] == 2


def test_low_stock_resolves_when_stock_recovers_and_is_raised_again_later(
    pharmacist, online_kiosk, medication
):
    lot = stock(online_kiosk, medication, 2)
    assert pharmacy_alerts_check() == {"raised": 1, "resolved": 0}
    stock(online_kiosk, medication, 5)  # a delivery into the same lot: 7 boxes
    assert pharmacy_alerts_check() == {"raised": 0, "resolved": 1}
    assert open_alerts(K.LOW_STOCK) == []
    assert pharmacy_alerts_check() == {"raised": 0, "resolved": 0}

    stock_adjust(user=pharmacist, lot_id=lot.pk, delta=-6, reason=StockMovement.Reason.WRITE_OFF)
    assert pharmacy_alerts_check() == {"raised": 1, "resolved": 0}
    assert len(open_alerts(K.LOW_STOCK)) == 1
    assert Alert.objects.filter(kind=K.LOW_STOCK).count() == 2
    assert notified(pharmacist, K.LOW_STOCK) == 2


def test_expired_boxes_do_not_count_as_stock(pharmacist, online_kiosk, medication):
    today = timezone.localdate()
    stock(online_kiosk, medication, 9, lot="OLD", expiry=today - dt.timedelta(days=1))
    pharmacy_alerts_check()
    assert len(open_alerts(K.LOW_STOCK)) == 1
    [expired] = open_alerts(K.LOT_EXPIRY)
    assert expired.subject_key.endswith(":expired")


def test_an_expiring_lot_alerts_then_alerts_again_once_expired(
    pharmacist, online_kiosk, medication
):
    today = timezone.localdate()
    stock(online_kiosk, medication, 10, lot="SOON", expiry=today + dt.timedelta(days=10))
    now = timezone.now()
    pharmacy_alerts_check(now=now)
    [expiring] = open_alerts(K.LOT_EXPIRY)
    assert expiring.subject_key.endswith(":expiring")
    assert expiring.params["lot"] == "SOON"
    # Eleven days on the lot has expired: "expires soon" resolves, "remove it" is raised.
    later = now + dt.timedelta(days=11)
    Kiosk.objects.filter(pk=online_kiosk.pk).update(last_heartbeat_at=later)
    pharmacy_alerts_check(now=later)
    [expired] = open_alerts(K.LOT_EXPIRY)
    assert expired.subject_key.endswith(":expired")
    assert notified(pharmacist, K.LOT_EXPIRY) == 2
    titles = set(
        Notification.objects.filter(recipient=pharmacist, kind=K.LOT_EXPIRY).values_list(
            "title_msgid", flat=True
        )
    )
    assert titles == {"A lot expires soon at %(kiosk)s", "An expired lot is still in %(kiosk)s"}


def test_a_written_off_expired_lot_resolves_its_alert(pharmacist, online_kiosk, medication):
    today = timezone.localdate()
    lot = stock(online_kiosk, medication, 4, lot="OLD", expiry=today - dt.timedelta(days=2))
    stock(online_kiosk, medication, 5, lot="NEW", slot="A2")
    pharmacy_alerts_check()
    assert len(open_alerts(K.LOT_EXPIRY)) == 1
    stock_adjust(user=pharmacist, lot_id=lot.pk, delta=-4, reason=StockMovement.Reason.WRITE_OFF)
    assert pharmacy_alerts_check()["resolved"] == 1
    assert open_alerts(K.LOT_EXPIRY) == []


def test_a_kiosk_is_offline_only_past_the_configured_minutes(pharmacist, kiosk, settings):
    settings.PHARMACY_KIOSK_OFFLINE_MINUTES = 15
    now = timezone.now()
    Kiosk.objects.filter(pk=kiosk.pk).update(last_heartbeat_at=now - dt.timedelta(minutes=14))
    pharmacy_alerts_check(now=now)
    assert open_alerts(K.KIOSK_OFFLINE) == []
    Kiosk.objects.filter(pk=kiosk.pk).update(last_heartbeat_at=now - dt.timedelta(minutes=16))
    pharmacy_alerts_check(now=now)
    pharmacy_alerts_check(now=now)
    [alert] = open_alerts(K.KIOSK_OFFLINE)
    assert alert.params == {"kiosk": kiosk.name, "minutes": 15}
    assert notified(pharmacist, K.KIOSK_OFFLINE) == 1
    # A heartbeat brings it back: the next check resolves the alert.
    kiosk_heartbeat(kiosk=kiosk, info={})
    assert pharmacy_alerts_check()["resolved"] == 1
    assert open_alerts(K.KIOSK_OFFLINE) == []


def test_retired_kiosks_and_kiosks_in_maintenance_are_not_offline(pharmacist, pharmacy):
    retired, _ = kiosk_for(pharmacy, name="Old")
    resting, _ = kiosk_for(pharmacy, name="Resting")
    Kiosk.objects.filter(pk=retired.pk).update(status=Kiosk.Status.RETIRED)
    Kiosk.objects.filter(pk=resting.pk).update(status=Kiosk.Status.MAINTENANCE)
    pharmacy_alerts_check()
    assert open_alerts(K.KIOSK_OFFLINE) == []


def test_only_the_kiosks_pharmacy_is_told(pharmacist, online_kiosk, medication):
    other = PharmacistFactory(pharmacy=PharmacyFactory())
    colleague = PharmacistFactory(pharmacy=online_kiosk.pharmacy)
    stock(online_kiosk, medication, 1)
    pharmacy_alerts_check()
    assert notified(pharmacist, K.LOW_STOCK) == 1
    assert notified(colleague, K.LOW_STOCK) == 1
    assert notified(other, K.LOW_STOCK) == 0


def test_email_follows_each_pharmacists_preference(
    pharmacy, kiosk, medication, mailoutbox, django_capture_on_commit_callbacks
):
    wants = PharmacistFactory(pharmacy=pharmacy, email="wants@example.org")
    quiet = PharmacistFactory(pharmacy=pharmacy, email="quiet@example.org")
    notification_preferences_update(user=quiet, choices={K.KIOSK_OFFLINE: (False, True)})
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            pharmacy_alerts_check()  # the kiosk never sent a heartbeat
    finally:
        celery_app.conf.task_always_eager = previous
    assert [m.to for m in mailoutbox] == [["wants@example.org"]]
    assert kiosk.name in mailoutbox[0].subject
    assert notified(quiet, K.KIOSK_OFFLINE) == 1  # still in the portal
    assert notified(wants, K.KIOSK_OFFLINE) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_checks_raise_one_alert_and_notify_once():
    pharmacy = PharmacyFactory()
    pharmacist = PharmacistFactory(pharmacy=pharmacy)
    kiosk, _ = kiosk_for(pharmacy)  # never sent a heartbeat: offline
    results = at_once(lambda i: pharmacy_alerts_check(), n=8)
    assert sum(r["raised"] for r in results) == 1
    assert Alert.objects.filter(kind=K.KIOSK_OFFLINE).count() == 1
    assert notified(pharmacist, K.KIOSK_OFFLINE) == 1
    assert kiosk.pk
