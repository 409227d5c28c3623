"""The load test's setup and checks (bench/load_locust.py runs them): the environment of the
server and worker, the seeded world (sites, health workers, patients with completed screenings,
a pharmacy with kiosks and approved prescriptions, a hospital with referrals) and the invariants
re-checked after the run."""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "load-test-pw-1"  # noqa: S105 - a throwaway database's users


def server_env(args: argparse.Namespace, media: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "DEBUG": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.db}",
        "DB_CONN_MAX_AGE": "60",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{args.redis_db}",
        "MEDIA_ROOT": str(media),
        "ML_THREADS": "1",
        "LOG_LEVEL": "WARNING",
    }


def seed(args: argparse.Namespace) -> dict:  # noqa: PLR0915 - one linear setup
    """Two sites, 10 health workers each, 100 patients each with a completed screening, a pharmacy
    with 2 pharmacists and 2 kiosks, approved prescriptions with codes, a hospital with 2 staff
    and referrals of site A's screenings."""
    import datetime as dt

    import django

    django.setup()
    from django.db import transaction
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from accounts.models import Role, User
    from pharmacy import codes, services
    from pharmacy.models import (
        DispenseCode,
        Medication,
        MedicationCategory,
        PharmacistMembership,
        Pharmacy,
        PharmacySiteLink,
        Prescription,
        PrescriptionItem,
    )
    from referrals.models import Hospital, HospitalStaffMembership, Referral
    from screening.models import Patient, Screening, Site, SiteMembership

    def user(username: str, role: str) -> User:
        u = User(username=username, role=role, preferred_language="en")
        u.set_password(PASSWORD)
        u.save()
        return u

    data: dict = {
        "health_workers": [],
        "site_of": {},
        "tokens": {},
        "screenings": {},
        "patients": {},
        "pharmacists": [],
        "hospital_staff": [],
        "kiosks": [],
        "codes": [],
        "prescriptions": [],
        "referrals": [],
    }
    counselling = {
        lang: {k: f"{k} ({lang})" for k in ("dose", "frequency", "duration", "warnings")}
        for lang in ("ko", "en")
    }
    now = timezone.now()
    with transaction.atomic():
        pharmacy = Pharmacy.objects.create(
            name="부하 약국", region="Seoul", latitude=37.56, longitude=126.97
        )
        category = MedicationCategory.objects.create(
            code="eye-lubricant",
            name_ko="인공눈물",
            name_en="Artificial tears",
            kiosk_dispensable=True,
        )
        medication = Medication.objects.create(
            code="tears",
            name_ko="인공눈물",
            name_en="Artificial tears",
            form="eye_drops",
            strength="0.1%",
            category=category,
            max_quantity=2,
        )
        for i in range(2):
            pharmacist_user = user(f"load-pharmacist-{i}", Role.PHARMACIST)
            PharmacistMembership.objects.create(
                user=pharmacist_user, pharmacy=pharmacy, licence_number=f"LOAD-{i}"
            )
            data["pharmacists"].append(pharmacist_user.username)
        for i in range(2):
            kiosk, secret = services.kiosk_create(
                pharmacy=pharmacy, name=f"load {i}", kiosk_id=f"K-LOAD-{i}"
            )
            services.stock_lot_receive(
                kiosk=kiosk,
                slot="A1",
                medication=medication,
                lot_number="L1",
                expiry=timezone.localdate() + dt.timedelta(days=365),
                quantity=args.codes,
            )
            data["kiosks"].append([kiosk.kiosk_id, secret])
        hospital = Hospital.objects.create(
            name="부하 안과",
            name_en="Load eye hospital",
            address="서울",
            latitude=37.58,
            longitude=127.0,
            phone="02-000-0000",
            is_partner=True,
            accepts_referrals=True,
            weekly_capacity=40,
            open_slots=10,
            typical_wait_days=7,
        )
        for i in range(2):
            staff_user = user(f"load-hospital-{i}", Role.HOSPITAL_STAFF)
            HospitalStaffMembership.objects.create(user=staff_user, hospital=hospital)
            data["hospital_staff"].append(staff_user.username)
        first_screenings = []
        for side in ("A", "B"):
            site = Site.objects.create(
                name=f"부하 보건소 {side}",
                name_en=f"Load centre {side}",
                region="Seoul",
                latitude=37.56,
                longitude=126.97,
            )
            PharmacySiteLink.objects.create(pharmacy=pharmacy, site=site)
            workers = []
            for i in range(10):
                w = user(f"load-chw-{side}{i}", Role.HEALTH_WORKER)
                SiteMembership.objects.create(user=w, site=site)
                data["health_workers"].append(w.username)
                data["site_of"][w.username] = side
                data["tokens"][w.username] = Token.objects.create(user=w).key
                workers.append(w)
            patients = [
                Patient.objects.create(
                    site=site,
                    name=f"부하 환자 {side}{i}",
                    birth_date=dt.date(1950, 1, 1),
                    sex="F",
                    consent_given=True,
                    consent_recorded_at=now,
                )
                for i in range(100)
            ]
            screenings = [
                Screening.objects.create(
                    site=site,
                    patient=p,
                    health_worker=workers[i % 10],
                    status="completed",
                    triage="normal",
                    completed_at=now,
                )
                for i, p in enumerate(patients)
            ]
            data["patients"][side] = [p.pk for p in patients]
            data["screenings"][side] = [s.pk for s in screenings]
            first_screenings.append(screenings)
        pharmacist = User.objects.get(username="load-pharmacist-0")
        pickup_expires_at = now + dt.timedelta(days=3)
        prescriptions = Prescription.objects.bulk_create(
            Prescription(
                pharmacy=pharmacy,
                patient=s.patient,
                screening=s,
                source="user",
                status="approved",
                decided_by=pharmacist,
                decided_at=now,
                counselling=counselling,
                pickup_expires_at=pickup_expires_at,
            )
            for s in (first_screenings[0] * (args.codes // 100 + 1))[: args.codes]
        )
        PrescriptionItem.objects.bulk_create(
            PrescriptionItem(prescription=p, medication=medication, quantity=1)
            for p in prescriptions
        )
        rows = []
        for p in prescriptions:
            salt = codes.new_salt()
            code = codes.code_from_salt(salt)
            data["codes"].append(codes.format_code(code))
            rows.append(
                DispenseCode(
                    prescription=p,
                    salt=salt,
                    code_hash=codes.code_hash(code),
                    expires_at=pickup_expires_at,
                )
            )
        DispenseCode.objects.bulk_create(rows)
        data["prescriptions"] = [p.pk for p in prescriptions[:200]]
        for s in first_screenings[0][:40]:
            data["referrals"].append(
                Referral.objects.create(
                    screening=s,
                    hospital=hospital,
                    status="sent",
                    urgency="routine",
                    required_specialties=["retina"],
                    sent_at=now,
                ).pk
            )
    random.shuffle(data["codes"])
    return data


def check_invariants(env: dict[str, str]) -> dict:
    from django.db.models import Count, Q

    from pharmacy.management.commands.reconcile_stock import find_mismatches
    from pharmacy.models import Prescription, StockLot
    from screening.models import EyeResult, Screening

    chain = subprocess.run(
        [sys.executable, "manage.py", "verify_audit_chain"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    return {
        "negative_stock_lots": StockLot.objects.filter(quantity__lt=0).count(),
        "stock_ledger_mismatches": len(find_mismatches()),
        "prescriptions_released_twice": Prescription.objects.annotate(
            n=Count("dispenses", filter=Q(dispenses__status__in=["reserved", "completed"]))
        )
        .filter(n__gt=1)
        .count(),
        "screenings_with_two_results_for_one_eye": EyeResult.objects.values("screening", "eye")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "screenings_stuck": Screening.objects.filter(status__in=["queued", "processing"]).count(),
        "audit_chain_ok": chain.returncode == 0,
        "audit_chain_output": (chain.stdout + chain.stderr).strip()[-200:],
    }


def wait_for_drain(timeout: float) -> float:
    from screening.models import Screening

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not Screening.objects.filter(status__in=["queued", "processing"]).exists():
            break
        time.sleep(2)
    return time.monotonic() - start
