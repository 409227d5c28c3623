"""Load test of the kiosk dispense endpoint: 50 concurrent kiosk clients, then the invariants.

Run as a script, it builds a fresh PostgreSQL database (eyebridge_pharm_bench), loads one pharmacy
with 10 kiosks and thousands of approved prescriptions, starts gunicorn on 127.0.0.1, runs locust
headless against it for a bounded time, stops everything and re-checks the invariants (no
negative stock, the stock ledger reconciles, no prescription released twice, every 201 matches
one dispense). It prints a Markdown table for docs/benchmarks.md.

    .venv/bin/python bench/pharmacy_dispense_locust.py [--users 50] [--duration 60] [--wait 0.5,1.5]

Each simulated kiosk loops: POST kiosk/dispenses/ (Idempotency-Key) -> confirm-counselling ->
complete (``--flow full``), or only presents codes (``--flow reserve``: the dispense endpoint
alone); 5% of the reservations are retried with the same key and body (a replay). ``--wait``
is the kiosk's pause between patients in seconds ("0" for a closed loop with no pause). Clients
start ``--spawn-rate`` per second and the statistics restart once all run (steady state).

BENCH_SETTINGS=<module> runs the server (and the sequential phase) with another settings module.

Imported by locust (``locust -f bench/pharmacy_dispense_locust.py``) the same file is the locustfile.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import locust_rows, psql  # noqa: E402

DB_NAME = "eyebridge_pharm_bench"
PORT = 8765

# --- the locustfile part -----------------------------------------------------------------------

if "locust" in sys.modules or os.environ.get("BENCH_DATA"):
    from locust import between, constant, events, task
    from locust.contrib.fasthttp import FastHttpUser

    _DATA = json.loads(Path(os.environ["BENCH_DATA"]).read_text())
    _CODES: list[str] = _DATA["codes"]
    _KIOSKS: list[list[str]] = _DATA["kiosks"]
    _counter = {"users": 0, "created": 0}  # created: every 201 reservation, ramp included
    _low, _, _high = os.environ.get("BENCH_WAIT", "0.5,1.5").partition(",")
    _FLOW = os.environ.get("BENCH_FLOW", "full")

    class KioskClient(FastHttpUser):
        wait_time = (
            between(float(_low), float(_high or _low)) if float(_high or _low) > 0 else constant(0)
        )

        def on_start(self) -> None:
            kiosk_id, secret = _KIOSKS[_counter["users"] % len(_KIOSKS)]
            _counter["users"] += 1
            self.auth = {"Authorization": f"Kiosk {kiosk_id}:{secret}"}

        def _post(self, path: str, name: str, body: dict, expect: int, **headers: str):
            with self.client.post(
                path, json=body, headers={**self.auth, **headers}, name=name, catch_response=True
            ) as response:
                if response.status_code != expect:
                    response.failure(f"{response.status_code} {response.text[:120]}")
                return response

        @task
        def release(self) -> None:
            if not _CODES:
                return
            code = _CODES.pop()
            key = str(uuid.uuid4())
            reserved = self._post(
                "/api/v1/kiosk/dispenses/",
                "POST kiosk/dispenses/",
                {"code": code},
                201,
                **{"Idempotency-Key": key},
            )
            if reserved.status_code != 201:
                return
            _counter["created"] += 1
            if random.random() < 0.05:  # a kiosk that lost the answer and retries the same request
                self._post(
                    "/api/v1/kiosk/dispenses/",
                    "POST kiosk/dispenses/ (replay)",
                    {"code": code},
                    201,
                    **{"Idempotency-Key": key},
                )
            if _FLOW == "reserve":
                return
            dispense_id = reserved.json()["id"]
            self._post(
                f"/api/v1/kiosk/dispenses/{dispense_id}/confirm-counselling/",
                "POST kiosk/dispenses/{id}/confirm-counselling/",
                {},
                200,
            )
            self._post(
                f"/api/v1/kiosk/dispenses/{dispense_id}/complete/",
                "POST kiosk/dispenses/{id}/complete/",
                {},
                200,
            )

    @events.quitting.add_listener
    def _dump_stats(environment, **kwargs) -> None:
        rows = locust_rows(environment)
        rows[-1]["errors"] = sorted({str(e.error) for e in environment.stats.errors.values()})[:5]
        Path(os.environ["BENCH_OUT"]).write_text(
            json.dumps({"rows": rows, "created": _counter["created"]})
        )


# --- the runner part ---------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("BENCH_SETTINGS", "config.settings.dev"),
        "DEBUG": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        "DB_CONN_MAX_AGE": "60",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/13",
        "LOG_LEVEL": "WARNING",
    }


def build(n_codes: int, n_kiosks: int) -> dict:
    """Fresh database, one pharmacy, kiosks with deep stock, n approved prescriptions with codes."""
    psql(f"DROP DATABASE IF EXISTS {DB_NAME}")
    psql(f"CREATE DATABASE {DB_NAME}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=_env(),
        check=True,
    )
    os.environ.update(_env())
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import datetime as dt

    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Role, User
    from pharmacy import codes, services
    from pharmacy.models import (
        DispenseCode,
        Medication,
        MedicationCategory,
        PharmacistMembership,
        Pharmacy,
        Prescription,
        PrescriptionItem,
    )
    from screening.models import Patient, Screening, Site

    counselling = {
        lang: {k: f"{k} ({lang})" for k in ("dose", "frequency", "duration", "warnings")}
        for lang in ("ko", "en")
    }
    with transaction.atomic():
        site = Site.objects.create(
            name="벤치 보건소", region="Seoul", latitude=37.56, longitude=126.97
        )
        worker = User.objects.create(username="bench-chw", role=Role.HEALTH_WORKER)
        pharmacist = User.objects.create(username="bench-pharmacist", role=Role.PHARMACIST)
        pharmacy = Pharmacy.objects.create(
            name="벤치 약국", region="Seoul", latitude=37.56, longitude=126.97
        )
        PharmacistMembership.objects.create(
            user=pharmacist, pharmacy=pharmacy, licence_number="BENCH-1"
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
        kiosks = []
        today = timezone.localdate()
        for i in range(n_kiosks):
            kiosk, secret = services.kiosk_create(
                pharmacy=pharmacy, name=f"bench {i}", kiosk_id=f"K-BENCH-{i}"
            )
            kiosks.append([kiosk.kiosk_id, secret])
            # Two usable lots and one expired lot per kiosk: FEFO and the expiry filter are exercised.
            for lot, days, quantity in (
                ("SOON", 30, n_codes // n_kiosks),
                ("LATE", 400, min(n_codes, 10_000)),
                ("OLD", -1, 50),
            ):
                services.stock_lot_receive(
                    kiosk=kiosk,
                    slot="A1",
                    medication=medication,
                    lot_number=lot,
                    expiry=today + dt.timedelta(days=days),
                    quantity=quantity,
                )
        patient = Patient.objects.create(
            site=site, name="벤치", birth_date=dt.date(1950, 1, 1), sex="F", consent_given=True
        )
        screening = Screening.objects.create(
            site=site, patient=patient, health_worker=worker, status="completed", triage="normal"
        )
        now = timezone.now()
        pickup_expires_at = now + dt.timedelta(days=3)
        prescriptions = Prescription.objects.bulk_create(
            Prescription(
                pharmacy=pharmacy,
                patient=patient,
                screening=screening,
                source="user",
                status="approved",
                decided_by=pharmacist,
                decided_at=now,
                counselling=counselling,
                pickup_expires_at=pickup_expires_at,
            )
            for _ in range(n_codes)
        )
        PrescriptionItem.objects.bulk_create(
            PrescriptionItem(prescription=p, medication=medication, quantity=1)
            for p in prescriptions
        )
        plain, rows = [], []
        for p in prescriptions:
            salt = codes.new_salt()
            code = codes.code_from_salt(salt)
            plain.append(codes.format_code(code))
            rows.append(
                DispenseCode(
                    prescription=p,
                    salt=salt,
                    code_hash=codes.code_hash(code),
                    expires_at=pickup_expires_at,
                )
            )
        DispenseCode.objects.bulk_create(rows)
    random.shuffle(plain)
    return {"codes": plain, "kiosks": kiosks}


def measure_sequential(data: dict, n: int) -> dict:
    """One client, one request at a time, in-process (full middleware, no HTTP): the service time
    of POST kiosk/dispenses/ without queueing. Uses n codes from the pool."""
    import statistics

    from django.test import Client

    client = Client()
    kiosk_id, secret = data["kiosks"][0]
    timings = []
    for _ in range(n):
        code = data["codes"].pop()
        start = time.perf_counter()
        response = client.post(
            "/api/v1/kiosk/dispenses/",
            {"code": code},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Kiosk {kiosk_id}:{secret}",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 201, response.content
    timings.sort()
    return {"n": n, "p50": statistics.median(timings), "p99": timings[int(0.99 * (n - 1))]}


def check_invariants() -> dict:
    from django.db.models import Count, Q

    from pharmacy.management.commands.reconcile_stock import find_mismatches
    from pharmacy.models import Dispense, Prescription, StockLot

    return {
        "negative_lots": StockLot.objects.filter(quantity__lt=0).count(),
        "ledger_mismatches": len(find_mismatches()),
        "prescriptions_released_twice": Prescription.objects.annotate(
            n=Count("dispenses", filter=Q(dispenses__status__in=["reserved", "completed"]))
        )
        .filter(n__gt=1)
        .count(),
        "dispenses_completed": Dispense.objects.filter(status="completed").count(),
        "dispenses_total": Dispense.objects.count(),
        "expired_lot_used": Dispense.objects.filter(lines__lot__lot_number="OLD").count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=int, default=60, help="seconds of load")
    parser.add_argument(
        "--wait", default="0.5,1.5", help="kiosk pause between patients, 'low,high' seconds"
    )
    parser.add_argument("--codes", type=int, default=12000)
    parser.add_argument("--kiosks", type=int, default=10)
    # 3 sync workers measured best on the 2-core machine (docs/benchmarks.md): gthread workers
    # keep locust's keep-alive connections, so one process took most of them and hit the GIL.
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--flow",
        choices=["full", "reserve"],
        default="full",
        help="full: reserve, confirm, complete per patient; reserve: only POST kiosk/dispenses/",
    )
    parser.add_argument("--spawn-rate", type=float, default=10, help="clients started per second")
    parser.add_argument("--worker-class", default="sync", help="gunicorn -k (sync, gthread)")
    parser.add_argument(
        "--sequential", type=int, default=200, help="first time this many requests one at a time"
    )
    args = parser.parse_args()

    print(f"building {DB_NAME} with {args.codes} approved prescriptions ...", flush=True)
    data = build(args.codes, args.kiosks)
    sequential = measure_sequential(data, args.sequential) if args.sequential else None
    workdir = Path(tempfile.mkdtemp(prefix="pharmbench-"))
    data_file = workdir / "data.json"
    data_file.write_text(json.dumps(data))

    gunicorn = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi",
            "-b",
            f"127.0.0.1:{PORT}",
            "-w",
            str(args.workers),
            "-k",
            args.worker_class,
            "--threads",
            str(args.threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=_env(),
        start_new_session=True,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(
                    f"http://127.0.0.1:{PORT}/api/v1/kiosk/heartbeat/", timeout=1
                )  # noqa: S310
            except urllib.error.HTTPError:
                break  # 401/405: the server answers
            except OSError:
                time.sleep(0.2)
        out_file = workdir / "stats.json"
        command = [
            str(Path(sys.executable).parent / "locust"),
            "-f",
            __file__,
            "--headless",
            "-u",
            str(args.users),
            "-r",
            str(args.spawn_rate),
            # Statistics restart once every client is running: the figures are the steady state,
            # not the ramp (the first second of 50 clients arriving together is a burst no kiosk
            # fleet produces).
            "--reset-stats",
            "-t",
            f"{args.duration}s",
            "--host",
            f"http://127.0.0.1:{PORT}",
            "--only-summary",
            "--stop-timeout",
            "10",
        ]
        print("$ " + " ".join(command), flush=True)
        subprocess.run(
            command,
            cwd=ROOT,
            env={
                **_env(),
                "BENCH_DATA": str(data_file),
                "BENCH_WAIT": args.wait,
                "BENCH_FLOW": args.flow,
                "BENCH_OUT": str(out_file),
            },
            check=False,
        )
    finally:
        os.killpg(gunicorn.pid, signal.SIGTERM)
        gunicorn.wait(timeout=30)

    result = json.loads(out_file.read_text())
    rows = result["rows"]
    invariants = check_invariants()
    print()
    print(
        f"{args.users} kiosk clients ({args.flow} flow), {args.duration} s, wait {args.wait} s, gunicorn {args.workers}x{args.threads} {args.worker_class}"
    )
    print(
        "| Request | Count | Failures | Throughput (req/s) | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['name']} | {row['count']} | {row['failures']} | {row['rps']:.1f} | "
            f"{row['p50']:.0f} | {row['p95']:.0f} | {row['p99']:.0f} | {row['max']:.0f} |"
        )
    if rows[-1]["errors"]:
        print("errors: " + "; ".join(rows[-1]["errors"]))
    if sequential:
        print(
            f"\nSequential, in-process (service time, no queueing): {sequential['n']} requests, "
            f"p50 {sequential['p50']:.0f} ms, p99 {sequential['p99']:.0f} ms"
        )
    print()
    print("Invariants after the run: " + ", ".join(f"{k} = {v}" for k, v in invariants.items()))
    # Counted by the clients themselves: the table's counts restart after the ramp.
    reserved_ok = result["created"]
    reserved_ok += sequential["n"] if sequential else 0  # the sequential phase's 201s
    ok = (
        invariants["negative_lots"] == 0
        and invariants["ledger_mismatches"] == 0
        and invariants["prescriptions_released_twice"] == 0
        and invariants["expired_lot_used"] == 0
        and invariants["dispenses_total"] == reserved_ok
    )
    print(
        f"201s on POST kiosk/dispenses/ (sequential + load, ramp included) = {reserved_ok}; "
        f"dispenses in the database = {invariants['dispenses_total']}"
    )
    print("INVARIANTS OK" if ok else "INVARIANT VIOLATION")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
