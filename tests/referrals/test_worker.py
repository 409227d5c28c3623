"""The proposal hook through a real Celery worker on Redis: a redelivered task proposes once and
texts the patient once."""

from __future__ import annotations

import time

import pytest

from accounts.models import OutboundMessage
from config.celery import app as celery_app
from referrals.models import Referral, ReferralEvent
from referrals.tasks import referral_propose_for_screening
from tests.factories import ScreeningFactory
from tests.referrals.factories import HospitalFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def wait_until(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_duplicate_deliveries_through_a_worker_propose_once(celery_worker_process):
    celery_app.conf.task_always_eager = False  # this test is about real delivery
    HospitalFactory(latitude=37.5796, longitude=126.9990, specialties=["retina"])
    screening = ScreeningFactory(triage="urgent", findings=["D"])
    for _ in range(3):
        referral_propose_for_screening.delay(screening.pk)
    assert wait_until(lambda: OutboundMessage.objects.filter(topic="referral").exists())
    time.sleep(1.0)  # give the duplicates time to run: they must change nothing
    referral = Referral.objects.get(screening=screening)
    assert referral.status == "proposed" and referral.urgency == "urgent"
    assert ReferralEvent.objects.filter(referral=referral).count() == 1
    assert OutboundMessage.objects.filter(topic="referral").count() == 1
