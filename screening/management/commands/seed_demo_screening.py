"""Screening's demo data: the health centres, their health workers, patients and screenings of
the CC0 fundus photo from scikit-image. Idempotent: running it twice changes nothing the second
time. `manage.py seed_demo` runs it with the other apps' seed commands, in order: the sites and
health workers first, the screenings last (so that the pharmacies and hospitals they are routed
to exist by then)."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Role, User
from config.demo import ensure_user
from screening import regions
from screening.models import Patient, Site, SiteMembership

# Public health centres (보건소); coordinates approximate. Rural sites first: the people EyeBridge
# serves live far from an eye doctor.
SITES = [
    (
        "정선군보건소",
        "Jeongseon County Health Center",
        "강원",
        "강원특별자치도 정선군 정선읍 녹송1길 25",
        37.3807,
        128.6609,
    ),
    (
        "신안군보건소",
        "Sinan County Health Center",
        "전남",
        "전라남도 신안군 압해읍 천사로 1004",
        34.8269,
        126.3514,
    ),
    (
        "종로구보건소",
        "Jongno-gu Health Center",
        "서울",
        "서울특별시 종로구 자하문로19길 36",
        37.5820,
        126.9707,
    ),
]


class RiskFactors(TypedDict, total=False):
    """A demo patient's risk factors, given to PatientInput as keyword arguments."""

    has_diabetes: bool
    has_hypertension: bool
    family_history_glaucoma: bool
    high_myopia: bool


# Name, birth date, sex, phone, risk factors, symptoms of the demo screening.
PATIENTS: list[tuple[str, dt.date, str, str, RiskFactors, list[str]]] = [
    (
        "김순자",
        dt.date(1948, 5, 2),
        "F",
        "010-2000-0001",
        {"has_diabetes": True},
        ["blurred_vision"],
    ),
    (
        "이영수",
        dt.date(1952, 11, 20),
        "M",
        "010-2000-0002",
        {"has_hypertension": True},
        ["dryness"],
    ),
    ("박말순", dt.date(1944, 1, 9), "F", "010-2000-0003", {"family_history_glaucoma": True}, []),
]


class Command(BaseCommand):
    help = "Load demo health centres, health workers (chw, chw2), patients and screenings."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--no-screenings",
            action="store_true",
            help="Only the centres and their health workers, not the demo screenings.",
        )

    def handle(self, *args, **options) -> None:
        chw, site = self._sites()
        if not options["no_screenings"]:
            self._screenings(chw, site)

    def _sites(self) -> tuple[User, Site]:
        with transaction.atomic():
            sites = []
            for name, name_en, region, address, lat, lon in SITES:
                site, _ = Site.objects.get_or_create(
                    name=name,
                    defaults={
                        "name_en": name_en,
                        "region": region,
                        "address": address,
                        "latitude": lat,
                        "longitude": lon,
                    },
                )
                sites.append(site)
            chw = ensure_user("chw", Role.HEALTH_WORKER, first_name="지은", last_name="최")
            SiteMembership.objects.get_or_create(user=chw, defaults={"site": sites[0]})
            chw2 = ensure_user("chw2", Role.HEALTH_WORKER, first_name="민호", last_name="정")
            SiteMembership.objects.get_or_create(user=chw2, defaults={"site": sites[1]})
        self.stdout.write("Demo health centres and health workers (chw, chw2) ready.")
        return chw, sites[0]

    def _screenings(self, chw: User, site: Site) -> None:
        import cv2
        import numpy as np
        from skimage import data

        from screening.services import PatientInput, patient_create, screening_submit

        rgb = data.retina()

        def photo(n: int, eye: str) -> bytes:
            # The demo has one CC0 fundus picture. Sent as it is for every eye, each result page
            # would warn (rightly) that the same photo was picked twice and used before. So each
            # eye gets a picture of its own: a left eye is the mirror image of a right one, and
            # each patient's camera exposes a little differently.
            picture = rgb[:, ::-1] if eye == "left" else rgb
            gamma = 0.94 + 0.04 * n
            lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255)
            picture = lut.astype(np.uint8)[picture]
            ok, buf = cv2.imencode(
                ".jpg", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]
            )
            return buf.tobytes() if ok else b""

        # Registered as the form does: home at the point of the site's 시/군/구 (정선군).
        district = (
            regions.nearest_district(site.latitude, site.longitude, within_km=10.0)
            if site.latitude is not None and site.longitude is not None
            else None
        )
        home: dict[str, Any] = (
            {
                "region": district.label,
                "home_latitude": district.latitude,
                "home_longitude": district.longitude,
            }
            if district is not None
            else {"region": site.region}
        )
        for n, (name, birth, sex, phone, risks, symptoms) in enumerate(PATIENTS):
            patient = Patient.objects.filter(site=site, name=name, birth_date=birth).first()
            if patient is None:
                patient = patient_create(
                    user=chw,
                    data=PatientInput(
                        name=name,
                        birth_date=birth,
                        sex=sex,
                        phone=phone,
                        consent_given=True,
                        **home,
                        **risks,
                    ),
                )
            if patient.screenings.exists():
                continue
            screening_submit(
                user=chw,
                patient_id=patient.id,
                left_image=SimpleUploadedFile("left.jpg", photo(n, "left"), "image/jpeg"),
                right_image=SimpleUploadedFile("right.jpg", photo(n, "right"), "image/jpeg"),
                symptoms=symptoms,
            )
