"""Demo data for `make run`: sites, one user per role, patients and screenings of the CC0 fundus
photo from scikit-image. Idempotent: running it twice changes nothing the second time."""

from __future__ import annotations

import datetime as dt
import os

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Role, User
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
PATIENTS = [
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


def _password() -> str:
    return os.environ.get("DEMO_PASSWORD", "eyebridge-demo")


def ensure_user(username: str, role: str, **extra) -> User:
    user, created = User.objects.get_or_create(username=username, defaults={"role": role, **extra})
    if created:
        user.set_password(_password())
        user.save()
    return user


class Command(BaseCommand):
    help = "Load demo sites, users (chw, pharmacist, hospital, admin), patients and screenings."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--no-screenings", action="store_true", help="Skip the demo screenings."
        )

    def handle(self, *args, **options) -> None:
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
            from dashboard.models import DashboardAccess

            public_health = ensure_user("publichealth", "", first_name="보건", last_name="담당")
            DashboardAccess.objects.get_or_create(
                user=public_health, defaults={"regions": ["강원", "전남"]}
            )
            admin = ensure_user("admin", Role.ADMIN, is_staff=True, is_superuser=True)
            if not admin.is_superuser:
                User.objects.filter(pk=admin.pk).update(is_staff=True, is_superuser=True)

        for command in ("seed_demo_pharmacy", "seed_demo_referrals"):
            try:
                call_command(command, stdout=self.stdout)
            except Exception as exc:  # a missing optional app must not stop the demo
                self.stderr.write(f"{command}: {exc}")

        if not options["no_screenings"]:
            self._screenings(chw, sites[0])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready. Logins: chw, chw2, pharmacist, hospital, publichealth, admin (password: {_password()})"
            )
        )

    def _screenings(self, chw: User, site: Site) -> None:
        import cv2
        from skimage import data

        from screening.services import PatientInput, patient_create, screening_submit

        rgb = data.retina()
        ok, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]
        )
        photo = buf.tobytes() if ok else b""
        for name, birth, sex, phone, risks, symptoms in PATIENTS:
            patient = Patient.objects.filter(site=site, name=name, birth_date=birth).first()
            if patient is None:
                patient = patient_create(
                    user=chw,
                    data=PatientInput(
                        name=name,
                        birth_date=birth,
                        sex=sex,
                        phone=phone,
                        region=site.region,
                        consent_given=True,
                        **risks,
                    ),
                )
            if patient.screenings.exists():
                continue
            screening_submit(
                user=chw,
                patient_id=patient.id,
                left_image=SimpleUploadedFile("left.jpg", photo, "image/jpeg"),
                right_image=SimpleUploadedFile("right.jpg", photo, "image/jpeg"),
                symptoms=symptoms,
            )
