"""factory_boy factories for accounts and screening; pharmacy and referrals keep theirs beside
their tests (tests/pharmacy/factories.py, tests/referrals/factories.py)."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from accounts.models import Role, User
from screening.models import Patient, Screening, Sex, Site, SiteMembership


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-test-123")
    role = ""
    preferred_language = "en"


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    name = factory.Sequence(lambda n: f"보건소 {n}")
    name_en = factory.Sequence(lambda n: f"Health centre {n}")
    region = "Seoul"
    latitude = 37.5665
    longitude = 126.9780


class HealthWorkerFactory(UserFactory):
    role = Role.HEALTH_WORKER

    @factory.post_generation
    def site(self, create: bool, extracted: Site | None, **kwargs) -> None:
        if create:
            SiteMembership.objects.create(user=self, site=extracted or SiteFactory())


class AdminFactory(UserFactory):
    role = Role.ADMIN
    is_staff = True
    is_superuser = True


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"환자 {n}")
    birth_date = dt.date(1955, 3, 14)
    sex = Sex.FEMALE
    phone = factory.Sequence(lambda n: f"010-{n // 10000:04d}-{n % 10000:04d}")
    region = "Seoul"
    consent_given = True
    consent_recorded_at = factory.LazyFunction(timezone.now)


class ScreeningFactory(factory.django.DjangoModelFactory):
    """A screening row without images; tests that need the pipeline submit through the service."""

    class Meta:
        model = Screening

    patient = factory.SubFactory(PatientFactory)
    site = factory.SelfAttribute("patient.site")
    health_worker = factory.LazyAttribute(lambda o: HealthWorkerFactory(site=o.site))
    symptoms = factory.LazyFunction(list)
    status = Screening.Status.COMPLETED
    triage = "normal"
    reasons = factory.LazyFunction(list)
    findings = factory.LazyFunction(list)
