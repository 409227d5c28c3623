"""Demo registry: real Korean hospitals with eye departments (approximate coordinates, demo
capacities) and a hospital staff account. Idempotent: safe to run on every deploy of a demo.

The `hospital` login works at 강릉아산병원, the partner hospital the ranking puts first for the
patients of the demo health worker (chw, at 정선군보건소 in 강원): the nearest with retina and
glaucoma services, and the demo gives it the most open slots nearby
(tests/referrals/test_demo_region.py holds the ranking to that).

``--history``: the referrals of the past screenings that seed_demo_history wrote
(referrals/management/commands/_history.py)."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Role, User
from referrals.models import Hospital, HospitalStaffMembership, Specialty
from referrals.services import specialties_ensure_defaults

ALL = [
    "general",
    "retina",
    "glaucoma",
    "cataract",
    "neuro",
    "paediatric",
    "cornea",
    "oculoplastics",
]

# (name, English name, address, lat, lon, phone, specialties, weekly capacity, open slots, wait days)
HOSPITALS = [
    (
        "서울대학교병원",
        "Seoul National University Hospital",
        "서울 종로구 대학로 101",
        37.5796,
        126.9990,
        "1588-5700",
        ALL,
        120,
        12,
        21,
    ),
    (
        "세브란스병원",
        "Severance Hospital",
        "서울 서대문구 연세로 50-1",
        37.5622,
        126.9410,
        "1599-1004",
        ALL,
        120,
        10,
        18,
    ),
    (
        "서울아산병원",
        "Asan Medical Center",
        "서울 송파구 올림픽로43길 88",
        37.5267,
        127.1082,
        "1688-7575",
        ALL,
        140,
        8,
        24,
    ),
    (
        "삼성서울병원",
        "Samsung Medical Center",
        "서울 강남구 일원로 81",
        37.4881,
        127.0855,
        "1599-3114",
        ALL,
        120,
        9,
        20,
    ),
    (
        "서울성모병원",
        "Seoul St. Mary's Hospital",
        "서울 서초구 반포대로 222",
        37.5014,
        127.0050,
        "1588-1511",
        ALL,
        100,
        10,
        14,
    ),
    (
        "김안과병원",
        "Kim's Eye Hospital",
        "서울 영등포구 영신로 136",
        37.5190,
        126.9050,
        "",
        ["general", "retina", "glaucoma", "cataract", "cornea", "oculoplastics"],
        200,
        30,
        7,
    ),
    (
        "분당서울대학교병원",
        "Seoul National University Bundang Hospital",
        "경기 성남시 분당구 구미로173번길 82",
        37.3520,
        127.1240,
        "",
        ALL,
        100,
        10,
        18,
    ),
    (
        "인하대학교병원",
        "Inha University Hospital",
        "인천 중구 인항로 27",
        37.4570,
        126.6330,
        "",
        ["general", "retina", "glaucoma", "cataract"],
        60,
        8,
        10,
    ),
    (
        "부산대학교병원",
        "Pusan National University Hospital",
        "부산 서구 구덕로 179",
        35.1006,
        129.0175,
        "",
        ALL,
        90,
        9,
        14,
    ),
    (
        "경북대학교병원",
        "Kyungpook National University Hospital",
        "대구 중구 동덕로 130",
        35.8662,
        128.6040,
        "",
        ALL,
        80,
        8,
        14,
    ),
    (
        "전남대학교병원",
        "Chonnam National University Hospital",
        "광주 동구 제봉로 42",
        35.1420,
        126.9213,
        "",
        ALL,
        80,
        7,
        12,
    ),
    (
        "충남대학교병원",
        "Chungnam National University Hospital",
        "대전 중구 문화로 282",
        36.3170,
        127.4150,
        "",
        ALL,
        70,
        6,
        12,
    ),
    (
        "전북대학교병원",
        "Jeonbuk National University Hospital",
        "전북 전주시 덕진구 건지로 20",
        35.8470,
        127.1410,
        "",
        ["general", "retina", "glaucoma", "cataract", "paediatric"],
        60,
        6,
        10,
    ),
    (
        "충북대학교병원",
        "Chungbuk National University Hospital",
        "충북 청주시 서원구 1순환로 776",
        36.6240,
        127.4620,
        "",
        ["general", "retina", "glaucoma", "cataract"],
        50,
        5,
        10,
    ),
    (
        "강원대학교병원",
        "Kangwon National University Hospital",
        "강원 춘천시 백령로 156",
        37.8700,
        127.7440,
        "",
        ["general", "retina", "glaucoma", "cataract"],
        40,
        4,
        9,
    ),
    (
        "원주세브란스기독병원",
        "Wonju Severance Christian Hospital",
        "강원 원주시 일산로 20",
        37.3490,
        127.9460,
        "",
        ["general", "retina", "glaucoma", "cataract", "neuro"],
        50,
        5,
        10,
    ),
    (
        "강릉아산병원",
        "Gangneung Asan Hospital",
        "강원 강릉시 사천면 방동길 38",
        37.8180,
        128.8570,
        "",
        ["general", "retina", "glaucoma", "cataract"],
        60,
        10,
        7,
    ),
    (
        "울산대학교병원",
        "Ulsan University Hospital",
        "울산 동구 방어진순환도로 877",
        35.5220,
        129.4290,
        "",
        ["general", "retina", "glaucoma", "cataract"],
        50,
        5,
        10,
    ),
    (
        "제주대학교병원",
        "Jeju National University Hospital",
        "제주 제주시 아란13길 15",
        33.4670,
        126.5450,
        "",
        ["general", "retina", "glaucoma", "cataract"],
        40,
        4,
        7,
    ),
]


# The hospital of the `hospital` login (name, address): see the module's docstring.
HOME_HOSPITAL = ("강릉아산병원", "강원 강릉시 사천면 방동길 38")


class Command(BaseCommand):
    help = "Create the demo hospital registry and the hospital staff user 'hospital' (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--history",
            action="store_true",
            help="Instead: the referrals of the past screenings (seed_demo_history).",
        )

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        if options["history"]:
            from referrals.management.commands._history import seed_history

            self.stdout.write(seed_history())
            return
        specialties_ensure_defaults()
        by_code = {s.code: s for s in Specialty.objects.all()}
        created = 0
        for name, name_en, address, lat, lon, phone, codes, capacity, slots, wait in HOSPITALS:
            hospital, was_created = Hospital.objects.update_or_create(
                name=name,
                address=address,
                defaults={
                    "name_en": name_en,
                    "latitude": lat,
                    "longitude": lon,
                    "phone": phone,
                    "is_partner": True,
                    "accepts_referrals": True,
                    "weekly_capacity": capacity,
                    "open_slots": slots,
                    "typical_wait_days": wait,
                },
            )
            hospital.specialties.set([by_code[c] for c in codes])
            created += was_created
        home = Hospital.objects.get(name=HOME_HOSPITAL[0], address=HOME_HOSPITAL[1])
        user, user_created = User.objects.get_or_create(
            username="hospital",
            defaults={
                "role": Role.HOSPITAL_STAFF,
                "first_name": "안과",
                "last_name": "담당",
                "preferred_language": "ko",
            },
        )
        if user_created:
            user.set_password(os.environ.get("DEMO_PASSWORD", "eyebridge-demo"))
            user.save(update_fields=["password"])
        # Moved there if an older demo put the login at another hospital.
        HospitalStaffMembership.objects.update_or_create(user=user, defaults={"hospital": home})
        self.stdout.write(
            f"{len(HOSPITALS)} hospitals ({created} new); hospital staff user 'hospital' at {home.name}."
        )
