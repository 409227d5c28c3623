"""Which finished screenings a person reads: every one the AI referred, and a reproducible random
sample of the others (the sample is what makes the AI's specificity measurable)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from grading import services
from grading.models import CaseEvent, CaseReason, GradingCase
from grading.selectors import grading_reason, in_sample
from screening.models import Screening
from tests.factories import ScreeningFactory

IDS = range(1, 2001)


def test_the_same_seed_draws_the_same_sample():
    first = [i for i in IDS if in_sample(screening_id=i, seed="audit-2026", rate=0.1)]
    again = [i for i in IDS if in_sample(screening_id=i, seed="audit-2026", rate=0.1)]
    other = [i for i in IDS if in_sample(screening_id=i, seed="audit-2027", rate=0.1)]
    assert first == again
    assert first != other


@pytest.mark.parametrize("rate", [0.05, 0.10, 0.25])
def test_the_rate_is_respected_on_2000_screenings(rate):
    drawn = sum(in_sample(screening_id=i, seed="eyebridge-grading", rate=rate) for i in IDS)
    # Binomial(2000, rate): within 4 standard deviations, for any seed.
    sd = (2000 * rate * (1 - rate)) ** 0.5
    assert abs(drawn - 2000 * rate) < 4 * sd, drawn


def test_a_larger_rate_keeps_the_screenings_a_smaller_one_drew():
    small = {i for i in IDS if in_sample(screening_id=i, seed="s", rate=0.05)}
    large = {i for i in IDS if in_sample(screening_id=i, seed="s", rate=0.20)}
    assert small <= large


def test_rate_zero_draws_none_and_rate_one_draws_all():
    assert not any(in_sample(screening_id=i, seed="s", rate=0.0) for i in IDS)
    assert all(in_sample(screening_id=i, seed="s", rate=1.0) for i in IDS)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("triage", "reason"),
    [("referable", "referable"), ("urgent", "urgent"), ("ungradable", "ungradable")],
)
def test_every_screening_the_ai_referred_is_read(settings, triage, reason):
    settings.GRADING_NORMAL_SAMPLE_RATE = 0.0
    assert grading_reason(screening=ScreeningFactory(triage=triage)) == reason


@pytest.mark.django_db
def test_normal_and_medication_results_are_read_only_when_sampled(settings):
    settings.GRADING_NORMAL_SAMPLE_RATE = 0.0
    assert grading_reason(screening=ScreeningFactory(triage="normal")) is None
    assert grading_reason(screening=ScreeningFactory(triage="medication")) is None
    settings.GRADING_NORMAL_SAMPLE_RATE = 1.0
    assert grading_reason(screening=ScreeningFactory(triage="normal")) == CaseReason.SAMPLE


@pytest.mark.django_db
def test_the_sample_follows_the_seed_setting(settings):
    settings.GRADING_NORMAL_SAMPLE_RATE = 0.5
    screenings = ScreeningFactory.create_batch(40, triage="normal")
    settings.GRADING_SAMPLE_SEED = "one"
    first = [grading_reason(screening=s) for s in screenings]
    settings.GRADING_SAMPLE_SEED = "two"
    second = [grading_reason(screening=s) for s in screenings]
    settings.GRADING_SAMPLE_SEED = "one"
    assert [grading_reason(screening=s) for s in screenings] == first
    assert first != second


@pytest.mark.django_db
def test_an_unfinished_screening_is_not_read():
    screening = ScreeningFactory(status=Screening.Status.QUEUED, triage="")
    assert grading_reason(screening=screening) is None
    assert services.grading_case_open(screening_id=screening.pk) is None


@pytest.mark.django_db
def test_opening_a_case_twice_opens_one(settings):
    screening = ScreeningFactory(triage="referable")
    first = services.grading_case_open(screening_id=screening.pk)
    second = services.grading_case_open(screening_id=screening.pk)
    assert first is not None and first.pk == second.pk
    assert GradingCase.objects.count() == 1
    assert list(first.events.values_list("kind", flat=True)) == [CaseEvent.Kind.OPENED]


@pytest.mark.django_db
def test_turnaround_is_48_hours_or_4_when_urgent():
    now = timezone.now()
    routine = services.grading_case_open(screening_id=ScreeningFactory(triage="referable").pk)
    urgent = services.grading_case_open(screening_id=ScreeningFactory(triage="urgent").pk)
    assert routine.due_at - routine.opened_at == dt.timedelta(hours=48)
    assert urgent.due_at - urgent.opened_at == dt.timedelta(hours=4)
    assert urgent.urgent and not routine.urgent
    assert routine.opened_at >= now


@pytest.mark.django_db
def test_a_sampled_case_records_the_rate_it_was_drawn_at(settings):
    settings.GRADING_NORMAL_SAMPLE_RATE = 1.0
    case = services.grading_case_open(screening_id=ScreeningFactory(triage="normal").pk)
    assert (case.reason, case.sample_rate, case.ai_refer) == ("sample", 1.0, False)


@pytest.mark.django_db
def test_the_completion_task_is_registered_and_opens_the_case(settings):
    from grading.tasks import grading_case_open

    assert "grading.tasks.grading_case_open" in settings.SCREENING_COMPLETED_TASKS
    screening = ScreeningFactory(triage="urgent")
    grading_case_open.apply(args=[screening.pk], throw=True)
    grading_case_open.apply(args=[screening.pk], throw=True)
    assert GradingCase.objects.filter(screening=screening).count() == 1
