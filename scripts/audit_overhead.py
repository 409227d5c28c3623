"""Measure what the audit trail costs a request: the same patient read, N times, with and without
AuditMiddleware, on a scratch PostgreSQL database (migrated here; rows are left behind).

    createdb eyebridge_audit_bench
    TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/eyebridge_audit_bench \
        .venv/bin/python scripts/audit_overhead.py 500
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import cast

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import override_settings  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402


def run(n: int, patient_id: int, user) -> list[float]:
    client = APIClient()
    client.force_authenticate(user)
    client.get(f"/api/v1/patients/{patient_id}/")  # warm up
    timings = []
    for _ in range(n):
        t0 = time.perf_counter()
        assert client.get(f"/api/v1/patients/{patient_id}/").status_code == 200
        timings.append((time.perf_counter() - t0) * 1000)
    return timings


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    call_command("migrate", verbosity=0)
    from django.conf import settings

    from accounts.models import AuditEvent, User
    from screening.models import Patient
    from tests.factories import HealthWorkerFactory, PatientFactory

    hw = cast(User, HealthWorkerFactory())
    patient = cast(Patient, PatientFactory(site=hw.site_membership.site))
    without = [m for m in settings.MIDDLEWARE if m != "accounts.audit.AuditMiddleware"]
    rounds: dict[str, list[float]] = {"with audit": [], "without audit": []}
    for _ in range(3):  # interleaved, so that machine load affects both alike
        rounds["with audit"] += run(n, patient.id, hw)
        with override_settings(MIDDLEWARE=without):
            rounds["without audit"] += run(n, patient.id, hw)
    for label, t in rounds.items():
        t.sort()
        print(
            f"{label:14s} n={len(t)} median {statistics.median(t):.2f} ms  p95 {t[int(len(t) * 0.95)]:.2f} ms"
        )
    delta = statistics.median(rounds["with audit"]) - statistics.median(rounds["without audit"])
    print(
        f"audit overhead (median): {delta:.2f} ms per request; events in table: {AuditEvent.objects.count()}"
    )


if __name__ == "__main__":
    main()
