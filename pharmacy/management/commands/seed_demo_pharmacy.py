"""Demo data for the pharmacy side: formulary, protocol, a Seoul pharmacy linked to every screening
site, the `pharmacist` user, two kiosks with stock. Safe to run again (nothing is duplicated).

Demo kiosk secrets are derived from SECRET_KEY and the kiosk id, so a second run prints the same
working secret. Production kiosks get random secrets from pharmacy.services.kiosk_create.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from pharmacy import codes, services
from pharmacy.models import (
    Kiosk,
    Medication,
    MedicationCategory,
    MedicationProtocol,
    PharmacistMembership,
    Pharmacy,
    PharmacySiteLink,
    StockLot,
)
from screening.models import Site

CATEGORIES = [
    # code, Korean, English, kiosk may dispense
    ("eye-lubricant", "인공눈물 (윤활 점안제)", "Artificial tears (lubricant eye drops)", True),
    ("eye-antiallergic", "항알레르기 점안제", "Antiallergic eye drops", True),
    ("eye-decongestant", "충혈 완화 점안제", "Decongestant eye drops", True),
    (
        "eye-antibiotic",
        "항생제 점안제 (전문의약품)",
        "Antibiotic eye drops (prescription only)",
        False,
    ),
]

_TEARS_KO = (
    "렌즈를 뺀 뒤 넣고 15분 뒤에 다시 끼세요. 용기 끝이 눈에 닿지 않게 하세요. "
    "1회용은 개봉 후 남은 액을 버리세요. 3일 넘게 증상이 계속되거나 통증·시력 저하가 있으면 안과 진료를 받으세요."
)
_TEARS_EN = (
    "Remove contact lenses first and wait 15 minutes before putting them back. Do not touch the eye with the tip. "
    "Discard single-dose vials after opening. See an eye doctor if symptoms last more than 3 days or you have pain or blurred vision."
)
MEDICATIONS = [
    {
        "code": "sodium-hyaluronate-0-1",
        "name_ko": "히알루론산나트륨 점안액 0.1% (일회용)",
        "name_en": "Sodium hyaluronate 0.1% eye drops (single-dose)",
        "ingredient": "히알루론산나트륨 (sodium hyaluronate)",
        "form": Medication.Form.SINGLE_DOSE_EYE_DROPS,
        "strength": "0.1%",
        "package": "0.4 mL × 30",
        "category": "eye-lubricant",
        "max_quantity": 2,
        "allergy_keywords": "hyaluron, 히알루론",
        "default_dose_ko": "한 번에 1방울",
        "default_dose_en": "1 drop",
        "default_frequency_ko": "하루 5-6회, 눈이 건조할 때",
        "default_frequency_en": "5-6 times a day, when the eyes feel dry",
        "default_duration_ko": "2주 사용 후 효과 확인",
        "default_duration_en": "2 weeks, then review",
        "default_warnings_ko": _TEARS_KO,
        "default_warnings_en": _TEARS_EN,
    },
    {
        "code": "refresh-plus",
        "name_ko": "리프레쉬 플러스 점안액",
        "name_en": "Refresh Plus lubricant eye drops",
        "ingredient": "카르복시메틸셀룰로오스나트륨 (carboxymethylcellulose sodium)",
        "form": Medication.Form.SINGLE_DOSE_EYE_DROPS,
        "strength": "0.5%",
        "package": "0.4 mL × 30",
        "category": "eye-lubricant",
        "max_quantity": 2,
        "allergy_keywords": "carboxymethylcellulose, 카르복시메틸셀룰로오스",
        "default_dose_ko": "한 번에 1-2방울",
        "default_dose_en": "1-2 drops",
        "default_frequency_ko": "필요할 때 하루 4-6회",
        "default_frequency_en": "As needed, 4-6 times a day",
        "default_duration_ko": "2주",
        "default_duration_en": "2 weeks",
        "default_warnings_ko": _TEARS_KO,
        "default_warnings_en": _TEARS_EN,
    },
    {
        "code": "tears-naturale-free",
        "name_ko": "티어스 내추럴 프리 점안액",
        "name_en": "Tears Naturale Free eye drops",
        "ingredient": "덱스트란70, 히프로멜로오스 (dextran 70, hypromellose)",
        "form": Medication.Form.SINGLE_DOSE_EYE_DROPS,
        "strength": "0.1% / 0.3%",
        "package": "0.8 mL × 32",
        "category": "eye-lubricant",
        "max_quantity": 2,
        "allergy_keywords": "dextran, 덱스트란, hypromellose, 히프로멜로오스",
        "default_dose_ko": "한 번에 1-2방울",
        "default_dose_en": "1-2 drops",
        "default_frequency_ko": "필요할 때",
        "default_frequency_en": "As needed",
        "default_duration_ko": "2주",
        "default_duration_en": "2 weeks",
        "default_warnings_ko": _TEARS_KO,
        "default_warnings_en": _TEARS_EN,
    },
    {
        "code": "ketotifen-0-025",
        "name_ko": "케토티펜푸마르산염 점안액 0.025%",
        "name_en": "Ketotifen fumarate 0.025% eye drops",
        "ingredient": "케토티펜푸마르산염 (ketotifen fumarate)",
        "form": Medication.Form.EYE_DROPS,
        "strength": "0.025%",
        "package": "5 mL",
        "category": "eye-antiallergic",
        "max_quantity": 1,
        "allergy_keywords": "ketotifen, 케토티펜, benzalkonium, 벤잘코늄",
        "default_dose_ko": "한 번에 1방울",
        "default_dose_en": "1 drop",
        "default_frequency_ko": "하루 2회 (아침, 저녁), 8-12시간 간격",
        "default_frequency_en": "Twice a day (morning and evening), 8-12 hours apart",
        "default_duration_ko": "가려움이 가라앉을 때까지, 최대 2주",
        "default_duration_en": "Until the itching settles, at most 2 weeks",
        "default_warnings_ko": "벤잘코늄 보존제가 들어 있어 소프트 렌즈는 빼고 넣으세요. 눈을 비비지 마세요. 통증, 분비물, 시력 저하가 있으면 안과 진료를 받으세요.",
        "default_warnings_en": "Contains benzalkonium: remove soft lenses first. Do not rub your eyes. See an eye doctor if you have pain, discharge or blurred vision.",
    },
    {
        "code": "naphazoline-combination",
        "name_ko": "나파졸린염산염 복합 점안액",
        "name_en": "Naphazoline hydrochloride combination eye drops",
        "ingredient": "나파졸린염산염, 클로르페니라민말레산염 (naphazoline, chlorphenamine)",
        "form": Medication.Form.EYE_DROPS,
        "strength": "0.003% / 0.03%",
        "package": "15 mL",
        "category": "eye-decongestant",
        "max_quantity": 1,
        "avoid_in_glaucoma": True,
        "allergy_keywords": "naphazoline, 나파졸린, chlorphenamine, 클로르페니라민",
        "default_dose_ko": "한 번에 1-2방울",
        "default_dose_en": "1-2 drops",
        "default_frequency_ko": "하루 3-6회",
        "default_frequency_en": "3-6 times a day",
        "default_duration_ko": "최대 3일",
        "default_duration_en": "At most 3 days",
        "default_warnings_ko": "녹내장이 있거나 의심되면 쓰지 마세요. 3일 넘게 쓰지 마세요 (반동 충혈).",
        "default_warnings_en": "Do not use with glaucoma or suspected glaucoma. Do not use for more than 3 days (rebound redness).",
    },
    {
        "code": "levofloxacin-0-5",
        "name_ko": "레보플록사신 점안액 0.5%",
        "name_en": "Levofloxacin 0.5% eye drops",
        "ingredient": "레보플록사신 (levofloxacin)",
        "form": Medication.Form.EYE_DROPS,
        "strength": "0.5%",
        "package": "5 mL",
        "category": "eye-antibiotic",
        "is_otc": False,
        "max_quantity": 1,
        "allergy_keywords": "levofloxacin, 레보플록사신, quinolone, 퀴놀론",
    },
]

PROTOCOL = [
    # name, triage, symptom, medication code, quantity, priority
    (
        "건조감 → 인공눈물 / dryness → artificial tears",
        ["normal", "medication"],
        "dryness",
        "sodium-hyaluronate-0-1",
        1,
        10,
    ),
    (
        "가려움 → 항알레르기 점안제 / itching → antiallergic drops",
        ["normal", "medication"],
        "itching",
        "ketotifen-0-025",
        1,
        20,
    ),
    (
        "충혈 → 인공눈물 / redness → artificial tears",
        ["normal", "medication"],
        "redness",
        "refresh-plus",
        1,
        30,
    ),
]

KIOSKS = [
    (
        "K-DEMO-1",
        "시청역 무인약국 1호기 / City Hall kiosk 1",
        "서울특별시 중구 세종대로 110 1층",
        37.5663,
        126.9779,
    ),
    (
        "K-DEMO-2",
        "종로 보건지소 무인약국 / Jongno kiosk 2",
        "서울특별시 종로구 종로 1",
        37.5702,
        126.9831,
    ),
]


def demo_kiosk_secret(kiosk_id: str) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"demo-kiosk:{kiosk_id}".encode(), hashlib.sha256
    ).hexdigest()[:32]


class Command(BaseCommand):
    help = "Create the demo pharmacy, formulary, protocol, pharmacist and kiosks (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options) -> None:  # noqa: ANN002, ANN003
        categories = {}
        for code, ko, en, kiosk_ok in CATEGORIES:
            categories[code], _ = MedicationCategory.objects.update_or_create(
                code=code, defaults={"name_ko": ko, "name_en": en, "kiosk_dispensable": kiosk_ok}
            )
        medications = {}
        for spec in MEDICATIONS:
            spec = dict(spec)
            code = spec.pop("code")
            spec["category"] = categories[spec["category"]]
            medications[code], _ = Medication.objects.update_or_create(code=code, defaults=spec)
        for name, triage, symptom, med, quantity, priority in PROTOCOL:
            MedicationProtocol.objects.update_or_create(
                name=name,
                defaults={
                    "triage": triage,
                    "symptom": symptom,
                    "medication": medications[med],
                    "quantity": quantity,
                    "priority": priority,
                    "active": True,
                },
            )

        pharmacy, _ = Pharmacy.objects.update_or_create(
            name="EyeBridge 온누리약국",
            defaults={
                "name_en": "EyeBridge Onnuri Pharmacy",
                "region": "Seoul",
                "phone": "02-000-0000",
                "address": "서울특별시 중구 세종대로 110",
                "latitude": 37.5663,
                "longitude": 126.9779,
            },
        )
        for site in Site.objects.all():
            PharmacySiteLink.objects.get_or_create(pharmacy=pharmacy, site=site)

        user = User.objects.filter(username="pharmacist").first()
        if user is None:
            user = User(
                username="pharmacist", role=Role.PHARMACIST, first_name="민지", last_name="김"
            )
            user.set_password(os.environ.get("DEMO_PASSWORD") or "eyebridge-demo")
            user.save()
        elif user.role != Role.PHARMACIST:
            User.objects.filter(pk=user.pk).update(role=Role.PHARMACIST)
        PharmacistMembership.objects.get_or_create(
            user=user, defaults={"pharmacy": pharmacy, "licence_number": "DEMO-PH-0001"}
        )

        today = timezone.localdate()
        for i, (kiosk_id, name, location, lat, lon) in enumerate(KIOSKS):
            secret = demo_kiosk_secret(kiosk_id)
            kiosk, _ = Kiosk.objects.update_or_create(
                kiosk_id=kiosk_id,
                defaults={
                    "pharmacy": pharmacy,
                    "name": name,
                    "location": location,
                    "latitude": lat,
                    "longitude": lon,
                    "status": Kiosk.Status.ACTIVE,
                    "secret_hash": codes.kiosk_secret_hash(secret),
                },
            )
            slots = [
                ("A1", "sodium-hyaluronate-0-1", 20, 365),
                ("A2", "refresh-plus", 20, 300),
                ("B1", "ketotifen-0-025", 10 if i == 0 else 2, 200),
                ("B2", "tears-naturale-free", 12, 400),
                ("C1", "naphazoline-combination", 8, 150),
            ]
            if i == 0:
                slots += [
                    ("A1", "sodium-hyaluronate-0-1", 5, 20)
                ]  # expiring soon: dispensed first (FEFO)
                slots += [("C2", "refresh-plus", 3, -5)]  # expired: never dispensed, shows an alert
            for slot, med, quantity, days in slots:
                lot_number = f"{kiosk_id[-1]}{slot}-{today.year}{days:+04d}"
                if not StockLot.objects.filter(
                    kiosk=kiosk, slot=slot, medication=medications[med], lot_number=lot_number
                ).exists():
                    services.stock_lot_receive(
                        kiosk=kiosk,
                        slot=slot,
                        medication=medications[med],
                        lot_number=lot_number,
                        expiry=today + dt.timedelta(days=days),
                        quantity=quantity,
                    )
            self.stdout.write(f"kiosk {kiosk_id} secret {secret}")
        self.stdout.write(
            self.style.SUCCESS(
                f"pharmacy '{pharmacy.name}' linked to {pharmacy.site_links.count()} site(s); user 'pharmacist' ready"
            )
        )
