"""Factories for the referrals app (accounts and screening factories live in tests/factories.py)."""

from __future__ import annotations

import factory
from django.utils import timezone

from accounts.models import Role
from referrals.models import Hospital, HospitalStaffMembership, Referral, ReferralStatus, Specialty
from tests.factories import ScreeningFactory, UserFactory


def specialty(code: str) -> Specialty:
    # get_or_create: migration 0002 seeds them, but transaction=True tests flush the table.
    return Specialty.objects.get_or_create(code=code, defaults={"name": code, "name_en": code})[0]


class HospitalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Hospital
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"안과병원 {n}")
    name_en = factory.Sequence(lambda n: f"Eye hospital {n}")
    address = factory.Sequence(lambda n: f"서울 {n}")
    latitude = 37.5796
    longitude = 126.9990
    phone = "02-000-0000"
    is_partner = True
    accepts_referrals = True
    weekly_capacity = 40
    open_slots = 10
    typical_wait_days = 7

    @factory.post_generation
    def specialties(self, create: bool, extracted, **kwargs) -> None:
        if create:
            codes = extracted if extracted is not None else ["general"]
            self.specialties.set([specialty(c) for c in codes])


class HospitalStaffFactory(UserFactory):
    class Meta:
        skip_postgeneration_save = True

    role = Role.HOSPITAL_STAFF

    @factory.post_generation
    def hospital(self, create: bool, extracted: Hospital | None, **kwargs) -> None:
        if create:
            HospitalStaffMembership.objects.create(
                user=self, hospital=extracted or HospitalFactory()
            )


class ReferralFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Referral

    screening = factory.SubFactory(ScreeningFactory, triage="referable", findings=["D"])
    hospital = factory.SubFactory(HospitalFactory)
    status = ReferralStatus.SENT
    urgency = Referral.Urgency.ROUTINE
    required_specialties = factory.LazyFunction(lambda: ["retina"])
    sent_at = factory.LazyFunction(timezone.now)
