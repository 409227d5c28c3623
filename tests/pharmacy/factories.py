"""Factories for the pharmacy app (accounts and screening factories live in tests/factories.py)."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from accounts.models import Role
from pharmacy import services
from pharmacy.models import (
    Medication,
    MedicationCategory,
    MedicationProtocol,
    PharmacistMembership,
    Pharmacy,
    PharmacySiteLink,
    Prescription,
    PrescriptionItem,
    StockLot,
)
from tests.factories import ScreeningFactory, UserFactory

COUNSELLING = {
    "ko": {
        "dose": "한 번에 1-2방울",
        "frequency": "하루 4-6회",
        "duration": "2주",
        "warnings": "렌즈를 빼고 넣으세요. 증상이 계속되면 안과 진료를 받으세요.",
    },
    "en": {
        "dose": "1-2 drops",
        "frequency": "4-6 times a day",
        "duration": "2 weeks",
        "warnings": "Remove contact lenses first. See an eye doctor if symptoms persist.",
    },
}


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MedicationCategory
        django_get_or_create = ("code",)

    code = "eye-lubricant"
    name_ko = "인공눈물"
    name_en = "Artificial tears"
    kiosk_dispensable = True


class MedicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Medication

    code = factory.Sequence(lambda n: f"med-{n}")
    name_ko = factory.Sequence(lambda n: f"히알루론산나트륨 점안액 {n}")
    name_en = factory.Sequence(lambda n: f"Sodium hyaluronate eye drops {n}")
    ingredient = "sodium hyaluronate"
    form = Medication.Form.EYE_DROPS
    strength = "0.1%"
    category = factory.SubFactory(CategoryFactory)
    is_otc = True
    max_quantity = 3


class PharmacyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pharmacy

    name = factory.Sequence(lambda n: f"약국 {n}")
    name_en = factory.Sequence(lambda n: f"Pharmacy {n}")
    region = "Seoul"
    latitude = 37.57
    longitude = 126.98


class PharmacistFactory(UserFactory):
    role = Role.PHARMACIST

    @factory.post_generation
    def pharmacy(self, create: bool, extracted: Pharmacy | None, **kwargs) -> None:
        if create:
            PharmacistMembership.objects.create(
                user=self, pharmacy=extracted or PharmacyFactory(), licence_number=f"LIC-{self.pk}"
            )


def link(pharmacy: Pharmacy, site) -> None:
    PharmacySiteLink.objects.get_or_create(pharmacy=pharmacy, site=site)


def kiosk_for(pharmacy: Pharmacy, name: str = "Kiosk"):
    """A kiosk and its secret, created through the service (the secret is only hashed)."""
    return services.kiosk_create(pharmacy=pharmacy, name=name)


def stock(
    kiosk,
    medication,
    quantity: int,
    *,
    slot: str = "A1",
    lot: str = "L1",
    expiry: dt.date | None = None,
) -> StockLot:
    return services.stock_lot_receive(
        kiosk=kiosk,
        slot=slot,
        medication=medication,
        lot_number=lot,
        expiry=expiry or timezone.localdate() + dt.timedelta(days=365),
        quantity=quantity,
    )


def protocol(
    medication: Medication,
    *,
    symptom: str = "dryness",
    triage=("normal", "medication"),
    quantity: int = 1,
) -> MedicationProtocol:
    return MedicationProtocol.objects.create(
        name=f"{symptom} -> {medication.code}",
        triage=list(triage),
        symptom=symptom,
        medication=medication,
        quantity=quantity,
    )


def pending_prescription(
    pharmacy: Pharmacy, medication: Medication | None = None, quantity: int = 1, **screening_kwargs
) -> Prescription:
    screening = ScreeningFactory(**screening_kwargs)
    link(pharmacy, screening.site)
    prescription = Prescription.objects.create(
        pharmacy=pharmacy,
        patient=screening.patient,
        screening=screening,
        source=Prescription.Source.USER,
        requested_by=screening.health_worker,
    )
    PrescriptionItem.objects.create(
        prescription=prescription, medication=medication or MedicationFactory(), quantity=quantity
    )
    return prescription


def approved_prescription(
    pharmacist,
    medication: Medication | None = None,
    quantity: int = 1,
    **screening_kwargs,
) -> tuple[Prescription, str]:
    """An approved prescription and its plain dispense code."""
    from pharmacy import codes

    prescription = pending_prescription(
        pharmacist.pharmacist_membership.pharmacy, medication, quantity, **screening_kwargs
    )
    services.prescription_approve(
        user=pharmacist,
        prescription_id=prescription.pk,
        counselling=COUNSELLING,
        acknowledge_warnings=True,
    )
    prescription.refresh_from_db()
    return prescription, codes.code_from_salt(prescription.dispense_code.salt)
