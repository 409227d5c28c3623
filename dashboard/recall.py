"""Recall coverage on the dashboard: the share of patients rescreened within 13 months.

The cohort: every patient (at a site in the scope and the filters) with a finished screening
whose result of record was normal or medication (the patients the programme itself must bring
back; referred ones are the hospitals') during the 12 months that ended 13 months before the
range's end date. Each of them has had 13 months to come back; rescreened means another finished
screening within 13 months (396 days) of such a screening. One query, whatever the number of
patients.

Hand example (tests/screening/test_recall.py): a range ending on 2026-03-15, so the
cohort's screenings are from 2024-02-15 to 2025-02-14; a patient screened normal on 2024-06-01
and again on 2025-05-01 is rescreened, one screened on 2024-06-01 and next on 2025-08-01 is not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, DateTimeField, Exists, ExpressionWrapper, OuterRef, Q
from django.db.models import Value as V

from dashboard.presenters import percent
from dashboard.scope import DashboardFilters, DashboardScope, day_start
from screening.models import Screening, Triage
from screening.recall import add_months

RESCREEN_MONTHS = 13
# "Within 13 months" of each screening, in SQL: 13 months of 30.44 days, rounded up.
RESCREEN_WITHIN = dt.timedelta(days=396)
COHORT_MONTHS = 12
FINISHED = (Screening.Status.COMPLETED, Screening.Status.UNGRADABLE)
RECALLED = (Triage.NORMAL, Triage.MEDICATION)


@dataclass(frozen=True)
class RecallCoverage:
    cohort_from: dt.date  # first day of the cohort's screenings
    cohort_to: dt.date  # last day (included)
    patients: int
    rescreened: int

    @property
    def share(self) -> float | None:
        return self.rescreened / self.patients if self.patients else None


def cohort_window(end: dt.date) -> tuple[dt.date, dt.date]:
    """[first, last] day of the cohort's screenings for a range ending on ``end``."""
    after = add_months(end, -RESCREEN_MONTHS)  # the cohort's screenings end the day before
    return add_months(after, -COHORT_MONTHS), after - dt.timedelta(days=1)


def _recalled_result() -> Q:
    """The result of record (a person's final read, else the AI's) was normal or medication."""
    return Q(final_triage__in=RECALLED) | Q(final_triage="", triage__in=RECALLED)


def recall_coverage(*, scope: DashboardScope, filters: DashboardFilters) -> RecallCoverage:
    first, last = cohort_window(filters.date_to)
    cohort = Screening.objects.filter(
        _recalled_result(),
        status__in=FINISHED,
        created_at__gte=day_start(first),
        created_at__lt=day_start(last + dt.timedelta(days=1)),
    )
    if scope.regions is not None:
        cohort = cohort.filter(site__region__in=scope.regions)
    if filters.region:
        cohort = cohort.filter(site__region=filters.region)
    if filters.site is not None:
        cohort = cohort.filter(site_id=filters.site.pk)
    came_back = Screening.objects.filter(
        patient_id=OuterRef("patient_id"),
        status__in=FINISHED,
        created_at__gt=OuterRef("created_at"),
        created_at__lte=ExpressionWrapper(
            OuterRef("created_at") + V(RESCREEN_WITHIN), output_field=DateTimeField()
        ),
    )
    counts = cohort.annotate(came_back=Exists(came_back)).aggregate(
        patients=Count("patient_id", distinct=True),
        rescreened=Count("patient_id", distinct=True, filter=Q(came_back=True)),
    )
    return RecallCoverage(
        cohort_from=first,
        cohort_to=last,
        patients=counts["patients"] or 0,
        rescreened=counts["rescreened"] or 0,
    )


def recall_context(*, scope: DashboardScope, filters: DashboardFilters) -> dict:
    """What ``dashboard/_recall_coverage.html`` renders."""
    coverage = recall_coverage(scope=scope, filters=filters)
    return {"recall_coverage": coverage, "recall_share_text": percent(coverage.share)}
