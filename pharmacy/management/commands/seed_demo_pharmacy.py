"""Demo data for the pharmacy side: formulary, protocol, a pharmacy near each demo health centre
(정선, 신안, 종로) with its kiosks and stock, and the `pharmacist` user (at the 정선 pharmacy, where
the demo health worker's prescriptions go). Safe to run again (nothing is duplicated).

Demo kiosk secrets are derived from SECRET_KEY and the kiosk id (pharmacy.demo), so a second run
prints the same working secret and the kiosk simulator can offer them in development. Production
kiosks get random secrets from pharmacy.services.kiosk_create.

``--history``: the prescriptions and kiosk dispenses of the past screenings that
seed_demo_history wrote (pharmacy/management/commands/_history.py).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Role, User
from pharmacy import codes, services
from pharmacy.demo import demo_kiosk_secret
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
    "1회용은 개봉 후 남은 액을 버리세요. 3일 써도 나아지지 않거나 통증·시력 저하가 있으면 사용을 멈추고 안과 진료를 받으세요."
)
_TEARS_EN = (
    "Remove contact lenses first and wait 15 minutes before putting them back. Do not touch the eye with the tip. "
    "Discard single-dose vials after opening. Stop and see an eye doctor if there is no improvement after 3 days of use, or if you have pain or blurred vision."
)
MEDICATIONS: list[dict[str, Any]] = [
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

# Each demo health centre has a pharmacy nearby, whose kiosks stand where its patients live: the
# pickup text names a pharmacy they can reach, and each region's dashboard shows its kiosks.
# The first is the `pharmacist` login's, and also serves any other site (one an admin adds).
PHARMACIES: list[dict[str, Any]] = [
    {
        "name": "EyeBridge 온누리약국",
        "name_en": "EyeBridge Onnuri Pharmacy",
        "region": "강원",
        "phone": "033-560-0000",
        "address": "강원특별자치도 정선군 정선읍 봉양리",
        "latitude": 37.3795,
        "longitude": 128.6625,
        "site": "정선군보건소",
        "kiosks": [
            (
                "K-DEMO-1",
                "정선군보건소 무인약국 1호기 / Jeongseon Health Center kiosk 1",
                "강원특별자치도 정선군 정선읍 녹송1길 25 1층",
                37.3807,
                128.6609,
            ),
            (
                "K-DEMO-2",
                "고한 무인약국 2호기 / Gohan kiosk 2",
                "강원특별자치도 정선군 고한읍 고한리",
                37.2072,
                128.8494,
            ),
        ],
    },
    {
        "name": "EyeBridge 천사약국",
        "name_en": "EyeBridge Cheonsa Pharmacy",
        "region": "전남",
        "phone": "061-240-0000",
        "address": "전라남도 신안군 압해읍 신장리",
        "latitude": 34.8250,
        "longitude": 126.3530,
        "site": "신안군보건소",
        "kiosks": [
            (
                "K-DEMO-3",
                "신안군보건소 무인약국 3호기 / Sinan Health Center kiosk 3",
                "전라남도 신안군 압해읍 천사로 1004 1층",
                34.8269,
                126.3514,
            ),
        ],
    },
    {
        "name": "EyeBridge 종로약국",
        "name_en": "EyeBridge Jongno Pharmacy",
        "region": "서울",
        "phone": "02-000-0000",
        "address": "서울특별시 종로구 종로 1",
        "latitude": 37.5702,
        "longitude": 126.9831,
        "site": "종로구보건소",
        "kiosks": [
            (
                "K-DEMO-4",
                "종로 무인약국 4호기 / Jongno kiosk 4",
                "서울특별시 종로구 종로 1",
                37.5702,
                126.9831,
            ),
        ],
    },
]
# The slots of every demo kiosk: (slot, medication, boxes, days to expiry).
SLOTS = [
    ("A1", "sodium-hyaluronate-0-1", 20, 365),
    ("A2", "refresh-plus", 20, 300),
    ("B1", "ketotifen-0-025", 10, 200),
    ("B2", "tears-naturale-free", 12, 400),
    ("C1", "naphazoline-combination", 8, 150),
]
# The first kiosk also shows the stock rules: a lot expiring soon (dispensed first, FEFO), an
# expired lot (never dispensed, shown as an alert), and a slot running low.
FIRST_KIOSK_EXTRA = [
    ("A1", "sodium-hyaluronate-0-1", 5, 20),
    ("C2", "refresh-plus", 3, -5),
]
LOW_STOCK_ELSEWHERE = {"ketotifen-0-025": 2}


class Command(BaseCommand):
    help = "Create the demo pharmacies, formulary, protocol, pharmacist and kiosks (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--history",
            action="store_true",
            help="Instead: the prescriptions and kiosk dispenses of the past screenings "
            "(seed_demo_history).",
        )

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        if options["history"]:
            from pharmacy.management.commands._history import seed_history

            self.stdout.write(seed_history())
            return
        medications = self._formulary()
        pharmacies = self._pharmacies()
        main = pharmacies[0]

        user = User.objects.filter(username="pharmacist").first()
        if user is None:
            user = User(
                username="pharmacist", role=Role.PHARMACIST, first_name="민지", last_name="김"
            )
            user.set_password(os.environ.get("DEMO_PASSWORD") or "eyebridge-demo")
            user.save()
        elif user.role != Role.PHARMACIST:
            User.objects.filter(pk=user.pk).update(role=Role.PHARMACIST)
        # Moved to the main pharmacy if an older demo put it elsewhere.
        PharmacistMembership.objects.update_or_create(
            user=user,
            defaults={"pharmacy": main},
            create_defaults={"pharmacy": main, "licence_number": "DEMO-PH-0001"},
        )

        today = timezone.localdate()
        first = True
        for pharmacy, spec in zip(pharmacies, PHARMACIES, strict=True):
            for kiosk_id, name, location, lat, lon in spec["kiosks"]:
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
                    (slot, med, quantity if first else LOW_STOCK_ELSEWHERE.get(med, quantity), days)
                    for slot, med, quantity, days in SLOTS
                ]
                self._stock(kiosk, medications, slots + (FIRST_KIOSK_EXTRA if first else []), today)
                first = False
                self.stdout.write(f"kiosk {kiosk_id} secret {secret}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(pharmacies)} pharmacies; '{main.name}' serves "
                f"{main.site_links.count()} site(s); user 'pharmacist' ready"
            )
        )

    def _formulary(self) -> dict[str, Medication]:
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
        return medications

    def _pharmacies(self) -> list[Pharmacy]:
        """The demo pharmacies, each linked to its own health centre only (an older demo linked
        one pharmacy to every site), and the main one to every site no demo pharmacy serves."""
        pharmacies = []
        own: dict[int, int] = {}  # site id -> the pharmacy that serves it
        sites = {s.name: s for s in Site.objects.filter(name__in=[p["site"] for p in PHARMACIES])}
        for spec in PHARMACIES:
            fields = {k: v for k, v in spec.items() if k not in ("name", "site", "kiosks")}
            pharmacy, _ = Pharmacy.objects.update_or_create(name=spec["name"], defaults=fields)
            pharmacies.append(pharmacy)
            if spec["site"] in sites:
                own[sites[spec["site"]].pk] = pharmacy.pk
        keep = Q(pk__in=[])
        for site_id, pharmacy_id in own.items():
            keep |= Q(site_id=site_id, pharmacy_id=pharmacy_id)
        PharmacySiteLink.objects.filter(pharmacy__in=pharmacies, site_id__in=list(own)).exclude(
            keep
        ).delete()
        for site_id, pharmacy_id in own.items():
            PharmacySiteLink.objects.get_or_create(pharmacy_id=pharmacy_id, site_id=site_id)
        for site in Site.objects.exclude(pk__in=list(own)):
            PharmacySiteLink.objects.get_or_create(pharmacy=pharmacies[0], site=site)
        return pharmacies

    def _stock(
        self,
        kiosk: Kiosk,
        medications: dict[str, Medication],
        slots: list[tuple[str, str, int, int]],
        today: dt.date,
    ) -> None:
        for slot, med, quantity, days in slots:
            lot_number = f"{kiosk.kiosk_id[-1]}{slot}-{today.year}{days:+04d}"
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
