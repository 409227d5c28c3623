"""Real PostgreSQL locks: two staff accepting and declining at the same moment."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from config.errors import Conflict
from referrals import services
from referrals.models import Referral, ReferralStatus
from tests.referrals.factories import HospitalStaffFactory, ReferralFactory


def _race(*actions):
    barrier = threading.Barrier(len(actions))
    outcomes: list[str] = [""] * len(actions)

    def run(i, action):
        try:
            barrier.wait()
            action()
            outcomes[i] = "ok"
        except Conflict:
            outcomes[i] = "conflict"
        except Exception as exc:  # report anything else as a failure of the test
            outcomes[i] = f"error: {exc!r}"
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcomes


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(5))
def test_concurrent_accept_and_decline_exactly_one_wins(attempt):
    referral = ReferralFactory()
    alice = HospitalStaffFactory(hospital=referral.hospital)
    bob = HospitalStaffFactory(hospital=referral.hospital)
    when = timezone.now() + dt.timedelta(days=2)
    outcomes = _race(
        lambda: services.referral_accept(user=alice, referral_id=referral.pk, appointment_at=when),
        lambda: services.referral_decline(user=bob, referral_id=referral.pk, reason="full"),
    )
    assert sorted(outcomes) == ["conflict", "ok"], outcomes
    referral.refresh_from_db()
    expected = ReferralStatus.ACCEPTED if outcomes[0] == "ok" else ReferralStatus.DECLINED
    assert referral.status == expected
    # Exactly one history row for the one transition that happened.
    assert list(referral.events.values_list("to_status", flat=True)) == [expected]


@pytest.mark.django_db(transaction=True)
def test_two_health_workers_sending_at_once_create_one_referral():
    from tests.factories import HealthWorkerFactory, ScreeningFactory
    from tests.referrals.factories import HospitalFactory

    screening = ScreeningFactory(triage="referable", findings=["G"])
    other = HealthWorkerFactory(site=screening.site)
    h1, h2 = HospitalFactory(), HospitalFactory()
    outcomes = _race(
        lambda: services.referral_send(
            user=screening.health_worker, screening_id=screening.pk, hospital_id=h1.pk
        ),
        lambda: services.referral_send(user=other, screening_id=screening.pk, hospital_id=h2.pk),
    )
    assert sorted(outcomes) == ["conflict", "ok"], outcomes
    assert Referral.objects.filter(screening=screening).count() == 1
