"""The reading queue: urgent first, then the oldest; scoped to the reading centre's sites;
overdue cases marked and escalated once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import AdminAlert, OutboundMessage
from config.errors import NotFound
from grading import selectors, services
from grading.models import CaseEvent
from tests.factories import HealthWorkerFactory, SiteFactory
from tests.grading.factories import GraderFactory, ReadingCentreFactory, case_for

pytestmark = pytest.mark.django_db


def test_urgent_cases_come_first_then_the_oldest(site, graders):
    now = timezone.now()
    old = case_for(site, opened_at=now - dt.timedelta(hours=30))
    new = case_for(site, opened_at=now - dt.timedelta(hours=1))
    urgent_new = case_for(site, triage="urgent", opened_at=now - dt.timedelta(minutes=5))
    urgent_old = case_for(site, triage="urgent", opened_at=now - dt.timedelta(hours=2))
    queue = list(selectors.grading_queue(user=graders[0]))
    assert queue == [urgent_old, urgent_new, old, new]


def test_a_grader_sees_only_the_sites_their_centre_reads_for(site, graders):
    mine = case_for(site)
    elsewhere = case_for(SiteFactory())
    other_grader = GraderFactory(centre=ReadingCentreFactory(sites=[elsewhere.screening.site]))
    assert list(selectors.grading_queue(user=graders[0])) == [mine]
    assert list(selectors.grading_queue(user=other_grader)) == [elsewhere]
    with pytest.raises(NotFound):
        selectors.case_get(user=graders[0], screening_id=elsewhere.screening_id)
    assert not selectors.grader_can_view_screening(
        user=graders[0], screening_id=elsewhere.screening_id
    )
    assert selectors.grader_can_view_screening(user=graders[0], screening_id=mine.screening_id)


def test_a_centre_that_reads_for_two_sites_sees_both(graders, centre):
    second_site = SiteFactory()
    centre.sites.add(second_site)
    case = case_for(second_site)
    assert case in selectors.grading_queue(user=graders[0])


def test_other_roles_see_no_case(site):
    case = case_for(site)
    hw = HealthWorkerFactory(site=site)
    assert list(selectors.grading_queue(user=hw)) == []
    with pytest.raises(NotFound):
        selectors.case_get(user=hw, screening_id=case.screening_id)


def test_a_case_the_grader_read_waits_for_another_grader(site, graders):
    case = case_for(site, triage="referable")
    services.grader_read_submit(
        user=graders[0],
        screening_id=case.screening_id,
        data=services.ReadInput(
            eyes=[
                services.EyeReadInput(eye="left", gradable=True),
                services.EyeReadInput(eye="right", gradable=True),
            ],
            next_step="normal",
        ),
    )
    assert list(selectors.grading_queue(user=graders[0])) == []
    assert list(selectors.grading_queue(user=graders[1])) == [case]


def test_an_overdue_case_is_marked_and_escalated_once(site, centre, graders):
    now = timezone.now()
    late = case_for(site, triage="urgent", opened_at=now - dt.timedelta(hours=5))
    on_time = case_for(site, opened_at=now - dt.timedelta(hours=5))
    assert late.is_overdue and not on_time.is_overdue
    assert services.grading_cases_escalate_overdue(now=now) == {"escalated": 1, "skipped": 0}
    assert services.grading_cases_escalate_overdue(now=now) == {"escalated": 0, "skipped": 0}
    late.refresh_from_db()
    assert late.escalated_at is not None
    assert late.events.filter(kind=CaseEvent.Kind.ESCALATED).count() == 1


def test_escalation_texts_the_reading_centre_once(
    site, centre, graders, django_capture_on_commit_callbacks
):
    late = case_for(site, opened_at=timezone.now() - dt.timedelta(hours=49))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.grading_case_escalate(case_id=late.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert not services.grading_case_escalate(case_id=late.pk)
    # A repeated notification (a redelivered task) sends nothing new either.
    services.grading_case_notify_overdue(case_id=late.pk)
    (message,) = OutboundMessage.objects.filter(topic="grading_overdue")
    assert message.to == centre.phone
    assert str(late.pk) in message.body and str(late.screening_id) in message.body
    assert not AdminAlert.objects.exists()


def test_with_no_centre_to_text_an_administrator_is_alerted(site, centre, graders):
    centre.phone = ""
    centre.save()
    late = case_for(site, opened_at=timezone.now() - dt.timedelta(hours=49))
    services.grading_case_notify_overdue(case_id=late.pk)
    services.grading_case_notify_overdue(case_id=late.pk)
    assert AdminAlert.objects.filter(kind="grading_overdue").count() == 1
    assert not OutboundMessage.objects.exists()


def test_the_escalation_beat_is_scheduled(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "grading.tasks.grading_cases_escalate" in tasks


def test_the_queue_reads_a_fixed_number_of_queries(site, graders, django_assert_num_queries):
    for _ in range(3):
        case_for(site)
    with django_assert_num_queries(1):
        rows = list(selectors.grading_queue(user=graders[0]))
        assert [r.screening.patient.pseudonym for r in rows]
