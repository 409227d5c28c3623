"""Reads of grading, already scoped: a grader sees the screenings of the sites their reading centre
reads for; anything else is simply not found. Also the rules that choose what needs a human read.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _

from accounts.models import Role, User
from config.errors import NotFound
from grading.models import (
    OPEN_STAGES,
    CaseEvent,
    CaseReason,
    CaseStage,
    GraderRead,
    GradingCase,
    ReadingCentre,
)
from screening.models import Screening, Triage

# What the AI's triage says about the need for a person's read.
ALWAYS_READ: dict[str, str] = {
    Triage.URGENT: CaseReason.URGENT,
    Triage.REFERABLE: CaseReason.REFERABLE,
    Triage.UNGRADABLE: CaseReason.UNGRADABLE,
}
SAMPLED_TRIAGE = {Triage.NORMAL, Triage.MEDICATION}
FINISHED = (Screening.Status.COMPLETED, Screening.Status.UNGRADABLE)


# --- what needs a human read -----------------------------------------------------------------
def in_sample(*, screening_id: int, seed: str, rate: float) -> bool:
    """Whether a screening falls in the random sample: sha256(seed:id), read as a number in
    [0, 1), below the rate. The same seed always draws the same screenings (an audit can redo
    the draw), a new seed draws a fresh sample, and no state is kept between draws."""
    digest = hashlib.sha256(f"{seed}:{screening_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def grading_reason(*, screening: Screening) -> str | None:
    """Why this finished screening needs a person's read, or None: every referable, urgent or
    ungradable one, and a sample (``GRADING_NORMAL_SAMPLE_RATE``) of those the AI did not refer,
    which is what makes the AI's specificity measurable."""
    if screening.status not in FINISHED:
        return None
    if screening.triage in ALWAYS_READ:
        return ALWAYS_READ[screening.triage]
    if screening.triage in SAMPLED_TRIAGE and in_sample(
        screening_id=screening.pk,
        seed=settings.GRADING_SAMPLE_SEED,
        rate=settings.GRADING_NORMAL_SAMPLE_RATE,
    ):
        return CaseReason.SAMPLE
    return None


def turnaround(*, urgent: bool) -> dt.timedelta:
    hours = (
        settings.GRADING_URGENT_TURNAROUND_HOURS if urgent else settings.GRADING_TURNAROUND_HOURS
    )
    return dt.timedelta(hours=hours)


# --- scope -----------------------------------------------------------------------------------
def user_centre_id(*, user: User) -> int | None:
    if not user.is_authenticated or user.role != Role.GRADER:
        return None
    membership = getattr(user, "grader_membership", None)
    return membership.centre_id if membership is not None else None


def is_grader(*, user: User) -> bool:
    return user_centre_id(user=user) is not None


def screenings_for_grader(*, user: User) -> QuerySet[Screening]:
    centre_id = user_centre_id(user=user)
    if centre_id is None:
        return Screening.objects.none()
    return Screening.objects.filter(site__reading_centres=centre_id)


def grader_can_view_screening(*, user: User, screening_id: int) -> bool:
    """The screening.extensions viewer check: a grader sees the photos and heatmaps of the
    screenings of the sites their reading centre reads for (earlier ones of a patient too)."""
    return screenings_for_grader(user=user).filter(pk=screening_id).exists()


def cases_for_user(*, user: User) -> QuerySet[GradingCase]:
    qs = GradingCase.objects.select_related("screening__patient", "screening__site")
    if user.is_authenticated and user.is_platform_admin:
        return qs
    centre_id = user_centre_id(user=user)
    if centre_id is None:
        return qs.none()
    return qs.filter(screening__site__reading_centres=centre_id)


def grading_queue(*, user: User) -> QuerySet[GradingCase]:
    """The open cases this user may read next: urgent first, then oldest. A case the grader has
    read already waits for someone else (the second reader and the arbitrator are others)."""
    return (
        cases_for_user(user=user)
        .filter(stage__in=OPEN_STAGES)
        .exclude(reads__grader=user)
        .order_by("-urgent", "opened_at", "id")
    )


def case_get(*, user: User, screening_id: int) -> GradingCase:
    """The case of a screening, with its reads (and their eyes and graders) and its history."""
    try:
        return (
            cases_for_user(user=user)
            .prefetch_related(
                "screening__images",
                "screening__results",
                Prefetch(
                    "reads",
                    queryset=GraderRead.objects.select_related("grader").prefetch_related("eyes"),
                ),
                Prefetch("events", queryset=CaseEvent.objects.select_related("actor")),
            )
            .get(screening_id=screening_id)
        )
    except (GradingCase.DoesNotExist, ValueError, TypeError):
        raise NotFound(_("Grading case not found.")) from None


def reads_visible_to(*, user: User, case: GradingCase) -> list[GraderRead]:
    """The earlier reads a user may see: none while a grader still has to read independently
    (the second reader must not be anchored on the first); all of them for the arbitrator, once
    the case is final, and for platform admins."""
    reads = list(case.reads.all())
    if user.is_platform_admin or case.stage in (CaseStage.ARBITRATION, CaseStage.FINAL):
        return reads
    return [r for r in reads if r.grader_id == user.pk]


def patient_history(*, user: User, screening: Screening, limit: int = 3) -> list[Screening]:
    """The patient's earlier finished screenings that the user may see, newest first, with
    their photos: the grader compares them side by side."""
    if user.is_authenticated and user.is_platform_admin:
        base = Screening.objects.all()
    else:
        base = screenings_for_grader(user=user)
    return list(
        base.filter(patient_id=screening.patient_id, status__in=FINISHED)
        .exclude(pk=screening.pk)
        .filter(created_at__lt=screening.created_at)
        .prefetch_related("images")
        .order_by("-created_at")[:limit]
    )


def case_for_screening(*, screening: Screening) -> GradingCase | None:
    """The case of a screening, for screening's result page panel (the page already scoped the
    screening to the viewer)."""
    return (
        GradingCase.objects.select_related("final_read__grader")
        .filter(screening_id=screening.pk)
        .first()
    )


def centres_for_screening(*, screening_id: int) -> QuerySet[ReadingCentre]:
    return ReadingCentre.objects.filter(sites__screenings=screening_id).distinct()


def cases_overdue(*, now: dt.datetime, limit: int = 500) -> list[int]:
    """Open cases past their due time that were not escalated yet, most overdue first."""
    return list(
        GradingCase.objects.filter(
            stage__in=OPEN_STAGES, escalated_at__isnull=True, due_at__lte=now
        )
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )
