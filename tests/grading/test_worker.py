"""The grading loop through a real Celery worker on Redis: a finished screening opens its case
(SCREENING_COMPLETED_TASKS, twice: one case), and a final read that downgrades the AI reaches
referrals by task name (SCREENING_RESULT_CHANGED_TASKS) and withdraws the unsent proposal."""

from __future__ import annotations

import time

import pytest

from config.celery import app as celery_app
from grading import services
from grading.models import GradingCase
from referrals.models import Referral
from screening.services import screening_trigger_downstream
from tests.factories import ScreeningFactory, SiteFactory
from tests.grading.factories import GraderFactory, ReadingCentreFactory, with_photos
from tests.referrals.factories import HospitalFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def wait_until(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_a_final_downgrade_withdraws_the_proposal_through_the_worker(celery_worker_process):
    celery_app.conf.task_always_eager = False  # this test is about real delivery
    HospitalFactory(specialties=["retina"])
    site = SiteFactory()
    centre = ReadingCentreFactory(sites=[site])
    first, second = GraderFactory(centre=centre), GraderFactory(centre=centre)
    screening = with_photos(
        ScreeningFactory(site=site, patient__site=site, triage="referable", findings=["D"])
    )
    screening_trigger_downstream(screening_id=screening.pk)
    screening_trigger_downstream(screening_id=screening.pk)  # a redelivery
    assert wait_until(
        lambda: (
            GradingCase.objects.filter(screening=screening).exists()
            and Referral.objects.filter(screening=screening, status="proposed").exists()
        )
    ), celery_worker_process.log_text()[-3000:]
    time.sleep(1.0)  # the duplicate deliveries must change nothing
    assert GradingCase.objects.filter(screening=screening).count() == 1

    normal = services.ReadInput(
        eyes=[services.EyeReadInput(eye=e, gradable=True) for e in ("left", "right")],
        next_step="normal",
    )
    for grader in (first, second):
        services.grader_read_submit(user=grader, screening_id=screening.pk, data=normal)
    assert wait_until(
        lambda: Referral.objects.filter(screening=screening, status="cancelled").exists()
    ), celery_worker_process.log_text()[-3000:]
