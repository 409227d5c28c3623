"""Factories for the grading app (accounts and screening factories live in tests/factories.py)."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from accounts.models import Role
from grading.models import GraderMembership, GradingCase, ReadingCentre
from screening.models import EyeResult, ScreeningImage
from tests.factories import ScreeningFactory, UserFactory


class ReadingCentreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReadingCentre
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"판독센터 {n}")
    name_en = factory.Sequence(lambda n: f"Reading centre {n}")
    phone = factory.Sequence(lambda n: f"010-9000-{n:04d}")

    @factory.post_generation
    def sites(self, create: bool, extracted, **kwargs) -> None:
        if create and extracted:
            self.sites.set(extracted)


class GraderFactory(UserFactory):
    class Meta:
        skip_postgeneration_save = True

    role = Role.GRADER

    @factory.post_generation
    def centre(self, create: bool, extracted: ReadingCentre | None, **kwargs) -> None:
        if create:
            GraderMembership.objects.create(user=self, centre=extracted or ReadingCentreFactory())


def with_photos(screening, *, eyes=("left", "right"), probabilities=None):
    """Give a screening a photo and an AI result per eye (the files need not exist)."""
    probabilities = probabilities or {"N": 0.9, "D": 0.05, "G": 0.05}
    for eye in eyes:
        ScreeningImage.objects.create(
            screening=screening,
            eye=eye,
            path=f"test/{screening.pk}-{eye}.jpg",
            sha256=f"{screening.pk:032d}{len(eye):032d}",
            width=64,
            height=64,
            gradable=True,
        )
        EyeResult.objects.create(
            screening=screening,
            eye=eye,
            probabilities=probabilities,
            top_class=max(probabilities, key=probabilities.get),
            findings=[c for c, p in probabilities.items() if c != "N" and p >= 0.5],
            model_version="test",
        )
    return screening


def open_case(screening, *, urgent: bool | None = None, opened_at=None) -> GradingCase:
    """A case for a finished screening, opened now (or at ``opened_at``)."""
    from screening.result_of_record import is_referable

    opened_at = opened_at or timezone.now()
    urgent = screening.triage == "urgent" if urgent is None else urgent
    return GradingCase.objects.create(
        screening=screening,
        reason=screening.triage if is_referable(screening.triage) else "sample",
        sample_rate=None if is_referable(screening.triage) else 0.1,
        ai_triage=screening.triage,
        ai_refer=is_referable(screening.triage),
        urgent=urgent,
        opened_at=opened_at,
        due_at=opened_at + dt.timedelta(hours=4 if urgent else 48),
    )


def case_for(site, *, triage: str = "referable", findings=None, eyes=("left", "right"), **kwargs):
    """A finished screening at ``site`` with photos and its open case."""
    screening = ScreeningFactory(
        site=site,
        patient__site=site,
        triage=triage,
        findings=findings
        if findings is not None
        else (["D"] if triage in ("referable", "urgent") else []),
    )
    with_photos(screening, eyes=eyes)
    return open_case(screening, **kwargs)
