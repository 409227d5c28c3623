"""Public-health dashboard render time on 100,000 screenings.

Builds a separate PostgreSQL database (default eyebridge_dashbench) holding N screenings spread
over the last 365 days at 40 sites in 8 regions, with two images and up to two eye results each,
a referral with its event history for every referable/urgent screening, and pharmacies, kiosks,
stock lots, prescriptions and dispenses. Then it rebuilds the daily roll-up of the
last 366 days (timed) and measures the full page (Django test client: middleware, session, audit
row, selectors, template) and the selector alone, with and without filters, both ways in the
same run: from the raw rows only (the page before the roll-up existed) and from the roll-up
plus today's raw rows (after), checking that both give the same figures; it prints p50/p95 as a
Markdown table for docs/benchmarks.md. It also reports the CPU
time one page costs (this process + its PostgreSQL backend): on a shared, loaded machine the wall
times mostly measure the queue for a core, the CPU time what a render needs from an idle one.

    .venv/bin/python bench/dashboard_bench.py [--screenings 100000] [--runs 20] [--rebuild] [--no-raw]

The data are kept between runs (the load takes a minute or two); --rebuild starts over.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import psql  # noqa: E402

REGIONS = ["Seoul", "Gyeonggi", "Gangwon", "Chungbuk", "Chungnam", "Jeonbuk", "Gyeongbuk", "Jeju"]
SITES_PER_REGION = 5
TRIAGE_MIX = [
    ("normal", 55),
    ("medication", 20),
    ("referable", 15),
    ("urgent", 3),
    ("ungradable", 5),
    ("", 2),
]
REFERABLE_CLASSES = ["D", "G", "C", "A", "H", "M", "O"]
BATCH = 5000


def build(n: int, rng: random.Random) -> None:  # noqa: C901, PLR0915 - one linear load script
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Role, User
    from pharmacy.models import (
        Dispense,
        Kiosk,
        Medication,
        MedicationCategory,
        Pharmacy,
        PharmacySiteLink,
        Prescription,
        StockLot,
    )
    from referrals.models import Hospital, Referral, ReferralEvent
    from screening.models import EyeResult, Patient, Screening, ScreeningImage, Site

    now = timezone.now()
    t0 = time.perf_counter()
    with transaction.atomic():
        sites = Site.objects.bulk_create(
            [
                Site(
                    name=f"{region} 보건소 {i}",
                    name_en=f"{region} centre {i}",
                    region=region,
                    latitude=37.0,
                    longitude=127.0,
                )
                for region in REGIONS
                for i in range(SITES_PER_REGION)
            ]
        )
        workers = User.objects.bulk_create(
            [User(username=f"chw{site.pk}", role=Role.HEALTH_WORKER) for site in sites]
        )
        worker_of = {site.pk: w for site, w in zip(sites, workers, strict=True)}
        n_patients = max(n // 4, 1)
        patients = []
        for i in range(0, n_patients, BATCH):
            patients += Patient.objects.bulk_create(
                [
                    Patient(
                        site=sites[j % len(sites)],
                        name=f"환자 {j}",
                        birth_date=dt.date(1950, 1, 1),
                        sex="F",
                        consent_given=True,
                        pseudonym=f"P-B{j:08d}",
                    )
                    for j in range(i, min(i + BATCH, n_patients))
                ]
            )
        print(f"  sites, patients: {time.perf_counter() - t0:.0f}s", flush=True)

        triage_values = [t for t, w in TRIAGE_MIX for _ in range(w)]
        plans = []  # (triage, findings per eye)
        screenings = []
        for _ in range(n):
            patient = patients[rng.randrange(len(patients))]
            triage = rng.choice(triage_values)
            status = {"": rng.choice(["queued", "failed"]), "ungradable": "ungradable"}.get(
                triage, "completed"
            )
            if triage in ("referable", "urgent"):
                eyes = [sorted(set(rng.sample(REFERABLE_CLASSES, rng.choice([1, 1, 2])))), ["N"]]
            elif triage == "medication":
                eyes = [["N"], ["N"]] if rng.random() < 0.7 else [["O"], ["N"]]
            elif triage == "normal":
                eyes = [["N"], ["N"]]
            else:
                eyes = []
            findings = sorted({c for eye in eyes for c in eye} - {"N"})
            plans.append((triage, eyes))
            screenings.append(
                Screening(
                    site_id=patient.site_id,
                    patient=patient,
                    health_worker=worker_of[patient.site_id],
                    status=status,
                    triage=triage,
                    findings=findings,
                    model_version="bench",
                )
            )
        saved = []
        for i in range(0, n, BATCH):
            saved += Screening.objects.bulk_create(screenings[i : i + BATCH])
        # auto_now_add overwrote created_at: spread the screenings evenly over the last 365 days,
        # in id order as in production (created_at is set on insert, so it grows with the id).
        with connection.cursor() as cur:
            cur.execute(
                "UPDATE screening_screening SET created_at = %s"
                " - ((SELECT max(id) FROM screening_screening) - id) * (interval '365 days' / %s)",
                [now, n],
            )
        print(f"  screenings: {time.perf_counter() - t0:.0f}s", flush=True)

        images, results = [], []
        for s, (triage, eyes) in zip(saved, plans, strict=True):
            if triage == "":
                continue
            for k, eye in enumerate(("left", "right")):
                gradable = triage != "ungradable" and rng.random() < 0.96
                images.append(
                    ScreeningImage(
                        screening_id=s.pk,
                        eye=eye,
                        path=f"b/{s.pk}{eye}.jpg",
                        sha256="0" * 64,
                        width=1024,
                        height=1024,
                        gradable=gradable,
                    )
                )
                if eyes and gradable:
                    results.append(
                        EyeResult(
                            screening_id=s.pk,
                            eye=eye,
                            probabilities={},
                            top_class=eyes[k][0],
                            findings=eyes[k],
                            model_version="bench",
                        )
                    )
        for i in range(0, len(images), BATCH):
            ScreeningImage.objects.bulk_create(images[i : i + BATCH])
        for i in range(0, len(results), BATCH):
            EyeResult.objects.bulk_create(results[i : i + BATCH])
        print(
            f"  images {len(images)}, results {len(results)}: {time.perf_counter() - t0:.0f}s",
            flush=True,
        )

        hospitals = Hospital.objects.bulk_create(
            [
                Hospital(name=f"안과 {i}", address=f"addr {i}", latitude=37.0, longitude=127.0)
                for i in range(30)
            ]
        )
        created = dict(Screening.objects.values_list("id", "created_at"))
        referrals, histories = [], []
        for s, (triage, _eyes) in zip(saved, plans, strict=True):
            if triage not in ("referable", "urgent"):
                continue
            t = created[s.pk]
            hospital = rng.choice(hospitals)
            r = rng.random()
            # proposed -> sent 85% -> accepted 70% -> attended 52% -> completed 45%; some
            # declined, no-shows, cancelled.
            path = [("proposed", 0.0)]
            if r < 0.85:
                path.append(("sent", rng.uniform(0.2, 24)))
                if r < 0.70:
                    path.append(("accepted", path[-1][1] + rng.expovariate(1 / 30)))
                    if r < 0.52:
                        path.append(("attended", path[-1][1] + 24 * 7))
                        if r < 0.45:
                            path.append(("completed", path[-1][1] + 1))
                    elif r < 0.58:
                        path.append(("no_show", path[-1][1] + 24 * 7))
                elif r < 0.78:
                    path.append(("declined", path[-1][1] + rng.uniform(1, 48)))
            elif r < 0.92:
                path.append(("cancelled", rng.uniform(1, 48)))
            status = path[-1][0]
            fields: dict[str, dt.datetime | str] = {}
            if status in ("accepted", "attended", "no_show", "completed"):
                fields["appointment_at"] = t + dt.timedelta(days=10)
            if status == "completed":
                fields["diagnosis"] = "bench"
            if status == "declined":
                fields["decline_reason"] = "full"
            at_hospital = status not in ("proposed", "cancelled")
            referrals.append(
                Referral(
                    screening_id=s.pk,
                    status=status,
                    urgency="routine",
                    hospital=hospital if at_hospital else None,
                    **fields,
                )
            )
            histories.append((t, hospital, path))
        saved_refs = []
        for i in range(0, len(referrals), BATCH):
            saved_refs += Referral.objects.bulk_create(referrals[i : i + BATCH])
        events = []
        for ref, (_t, hospital, path) in zip(saved_refs, histories, strict=True):
            previous = ""
            for to_status, _hours in path:
                events.append(
                    ReferralEvent(
                        referral_id=ref.pk,
                        kind=to_status,
                        from_status=previous,
                        to_status=to_status,
                        hospital=hospital,
                    )
                )
                previous = to_status
        for i in range(0, len(events), BATCH):
            ReferralEvent.objects.bulk_create(events[i : i + BATCH])
        # Event times: the screening's time plus the planned offsets (set in SQL, by row order).
        offsets = [hours for _t, _h, path in histories for _s, hours in path]
        with connection.cursor() as cur:
            cur.execute("CREATE TEMP TABLE ev_offset (n bigint, hours double precision)")
            with cur.copy("COPY ev_offset (n, hours) FROM STDIN") as copy:
                for k, hours in enumerate(offsets):
                    copy.write_row((k, hours))
            cur.execute(
                "UPDATE referrals_referralevent e SET created_at = s.created_at + o.hours * interval '1 hour'"
                " FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM referrals_referralevent) q,"
                " ev_offset o, referrals_referral r, screening_screening s"
                " WHERE q.id = e.id AND o.n = q.n AND r.id = e.referral_id AND s.id = r.screening_id"
            )
        print(
            f"  referrals {len(saved_refs)}, events {len(events)}: {time.perf_counter() - t0:.0f}s",
            flush=True,
        )

        category = MedicationCategory.objects.create(
            code="lub", name_ko="인공눈물", name_en="Tears", kiosk_dispensable=True
        )
        meds = Medication.objects.bulk_create(
            [
                Medication(
                    code=f"m{i}",
                    name_ko=f"약 {i}",
                    name_en=f"Med {i}",
                    form="eye_drops",
                    category=category,
                )
                for i in range(4)
            ]
        )
        pharmacist = User.objects.create(username="bench-pharmacist", role=Role.PHARMACIST)
        pharmacies = Pharmacy.objects.bulk_create(
            [Pharmacy(name=f"약국 {site.pk}", region=site.region) for site in sites]
        )
        PharmacySiteLink.objects.bulk_create(
            [
                PharmacySiteLink(pharmacy=p, site=site)
                for p, site in zip(pharmacies, sites, strict=True)
            ]
        )
        kiosks = Kiosk.objects.bulk_create(
            [
                Kiosk(
                    pharmacy=p,
                    kiosk_id=f"K{p.pk}-{j}",
                    name=f"Kiosk {p.pk}-{j}",
                    secret_hash="x",  # noqa: S106 - not a secret: bench kiosks never sign in
                )
                for p in pharmacies
                for j in range(2)
            ]
        )
        today = timezone.localdate()
        StockLot.objects.bulk_create(
            [
                StockLot(
                    kiosk=k,
                    slot=f"S{j}",
                    medication=meds[j],
                    lot_number=f"L{k.pk}-{j}",
                    expiry=today + dt.timedelta(days=rng.choice([-10, 90, 300])),
                    quantity=rng.randrange(0, 30),
                )
                for k in kiosks
                for j in range(4)
            ]
        )
        pharmacy_for = {site.pk: p for site, p in zip(sites, pharmacies, strict=True)}
        kiosks_for: dict[int, list[Kiosk]] = {}
        for kiosk in kiosks:
            kiosks_for.setdefault(kiosk.pharmacy_id, []).append(kiosk)
        medication = [
            s for s, (triage, _e) in zip(saved, plans, strict=True) if triage == "medication"
        ]
        prescriptions = [
            Prescription(
                pharmacy=pharmacy_for[s.site_id],
                patient_id=s.patient_id,
                screening_id=s.pk,
                source="rule",
                status="dispensed",
                decided_by=pharmacist,
                decided_at=now,
                counselling={"ko": {"dose": "1"}},
            )
            for s in medication
        ]
        saved_rx = []
        for i in range(0, len(prescriptions), BATCH):
            saved_rx += Prescription.objects.bulk_create(prescriptions[i : i + BATCH])
        dispenses = []
        for rx in saved_rx:
            if rng.random() < 0.6:
                status = "completed" if rng.random() < 0.95 else "failed"
                dispenses.append(
                    Dispense(
                        kiosk=rng.choice(kiosks_for[rx.pharmacy_id]),
                        prescription=rx,
                        status=status,
                        idempotency_key=f"b{rx.pk}",
                        counselling_confirmed_at=now if status == "completed" else None,
                    )
                )
        for i in range(0, len(dispenses), BATCH):
            Dispense.objects.bulk_create(dispenses[i : i + BATCH])
        with connection.cursor() as cur:
            cur.execute(
                "UPDATE pharmacy_dispense d SET created_at = s.created_at + interval '1 day'"
                " FROM pharmacy_prescription p, screening_screening s"
                " WHERE p.id = d.prescription_id AND s.id = p.screening_id"
            )
        print(
            f"  pharmacy: {len(saved_rx)} prescriptions, {len(dispenses)} dispenses: "
            f"{time.perf_counter() - t0:.0f}s",
            flush=True,
        )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--screenings", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--db", default="eyebridge_dashbench")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument(
        "--no-raw", action="store_true", help="skip the raw-rows path (the 'before' numbers)"
    )
    args = parser.parse_args()

    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.db):
        sys.exit("--db: a plain PostgreSQL database name")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["TEST_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{args.db}"
    os.environ.setdefault("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/9")
    exists = psql(f"SELECT 1 FROM pg_database WHERE datname = '{args.db}'") == "1"  # noqa: S608
    if args.rebuild and exists:
        psql(f"DROP DATABASE {args.db} WITH (FORCE)")
        exists = False
    if not exists:
        psql(f"CREATE DATABASE {args.db}")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from accounts.models import Role, User
    from dashboard import selectors
    from dashboard.scope import DashboardFilters, DashboardScope
    from dashboard.selectors import dashboard_data
    from dashboard.services import rollup_days_refresh
    from screening.models import Screening, Site

    real_dashboard_data = selectors.dashboard_data

    settings.ALLOWED_HOSTS = ["testserver"]
    # Keep one database connection across requests, as production does (DB_CONN_MAX_AGE), so
    # that the page time holds no reconnects and one backend process serves every query.
    from django.db import connection

    connection.settings_dict["CONN_MAX_AGE"] = 3600
    call_command("migrate", verbosity=0)
    have = Screening.objects.count()
    if have != args.screenings:
        if have:
            sys.exit(f"{args.db} holds {have} screenings, not {args.screenings}: pass --rebuild")
        print(f"building {args.screenings} screenings in {args.db} ...", flush=True)
        build(args.screenings, random.Random(7))
    counts = {
        "screenings": Screening.objects.count(),
        "images": psql_count("screening_screeningimage"),
        "eye results": psql_count("screening_eyeresult"),
        "referrals": psql_count("referrals_referral"),
        "referral events": psql_count("referrals_referralevent"),
        "dispenses": psql_count("pharmacy_dispense"),
    }
    print("data:", ", ".join(f"{v:,} {k}" for k, v in counts.items()), flush=True)

    # The roll-up of closed days, as the rebuild command writes it once after deploying (the beat
    # keeps it fresh afterwards). Rebuilt on every run: it is part of what is measured.
    today = timezone.localdate()
    t = time.perf_counter()
    rollup_days_refresh(days=[today - dt.timedelta(days=k) for k in range(366)])
    rollup_s = time.perf_counter() - t
    print(f"roll-up of 366 days rebuilt in {rollup_s:.1f} s", flush=True)
    # What autovacuum does on a live database. The load inserts every row stamped "now" and then
    # moves created_at back in one UPDATE: until vacuumed, the created_at index holds 100,000 dead
    # entries at the build's time, and every scan of "today" walked them (70-90 ms per query).
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")

    admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"role": Role.ADMIN})
    client = Client()
    client.force_login(admin)
    site = Site.objects.order_by("pk")[0]
    year = {"date_from": (today - dt.timedelta(days=364)).isoformat(), "date_to": today.isoformat()}
    cases = [
        ("default (last 84 days, all sites)", {}),
        ("full year, all sites", year),
        ("full year, one region", {**year, "region": site.region}),
        ("full year, one site", {**year, "site": str(site.pk)}),
    ]
    url = reverse("dashboard:index")
    with connection.cursor() as cur:
        # Parallel workers' CPU would escape the backend's counters below; on 2 shared cores
        # they barely help anyway.
        cur.execute("SET max_parallel_workers_per_gather = 0")
        cur.execute("SELECT pg_backend_pid()")
        backend_pid = cur.fetchone()[0]
    load_before = os.getloadavg()
    modes = ["rollup"] if args.no_raw else ["raw", "rollup"]
    rows = []
    for label, params in cases:
        filters = DashboardFilters(
            date_from=dt.date.fromisoformat(
                params.get("date_from", (today - dt.timedelta(days=83)).isoformat())
            ),
            date_to=today,
            region=params.get("region", ""),
            site=site if "site" in params else None,
        )
        scope = DashboardScope(regions=None)
        # Same figures both ways (the tests prove it on a small world; this on the bench's).
        raw_data = dashboard_data(scope=scope, filters=filters, use_rollup=False)
        rolled_data = dashboard_data(scope=scope, filters=filters)
        assert rolled_data.per_day == raw_data.per_day, label
        assert [r.count for r in rolled_data.positive] == [r.count for r in raw_data.positive]
        assert rolled_data.referrals["steps"] == raw_data.referrals["steps"], label
        assert rolled_data.referrals["median_to_accept"] == raw_data.referrals["median_to_accept"]
        for mode in modes:
            use_rollup = mode == "rollup"
            # The view calls selectors.dashboard_data: the raw mode is the same page with the
            # roll-up switched off (every day counted from the rows, as before it existed).
            selectors.dashboard_data = functools.partial(real_dashboard_data, use_rollup=use_rollup)
            for _ in range(2):  # warm caches and connections
                assert client.get(url, params).status_code == 200
            page = []
            cpu_start = time.process_time(), backend_cpu(backend_pid)
            for _ in range(args.runs):
                t = time.perf_counter()
                response = client.get(url, params)
                page.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200, response.status_code
            web_cpu = time.process_time() - cpu_start[0]
            db_cpu = backend_cpu(backend_pid) - cpu_start[1]
            assert connection.connection.info.backend_pid == backend_pid, "connection was replaced"
            selectors.dashboard_data = real_dashboard_data
            # The selector alone (the SQL), for the same filters.
            sel = []
            for _ in range(args.runs):
                t = time.perf_counter()
                data = dashboard_data(scope=scope, filters=filters, use_rollup=use_rollup)
                sel.append((time.perf_counter() - t) * 1000)
            cpu = (web_cpu * 1000 / args.runs, db_cpu * 1000 / args.runs)
            rows.append((label, mode, data.screenings_total, page, sel, cpu))
            print(
                f"{label} [{mode}, {data.rolled_up_days} days rolled up]: "
                f"{data.screenings_total} screenings, page p50 {statistics.median(page):.0f} ms "
                f"p95 {pct(page, 0.95):.0f} ms, selector p50 {statistics.median(sel):.0f} ms, "
                f"CPU per page {cpu[0]:.0f} ms web + {cpu[1]:.0f} ms database",
                flush=True,
            )

    load_after = os.getloadavg()
    print()
    print(
        f"machine: {os.cpu_count()} CPUs, load average (1/5/15 min) before "
        f"{'/'.join(f'{x:.1f}' for x in load_before)}, after {'/'.join(f'{x:.1f}' for x in load_after)}; "
        f"{args.runs} timed runs per case after 2 warm-up runs; roll-up rebuild of 366 days "
        f"{rollup_s:.1f} s"
    )
    print(
        "| Case | Path | Screenings in range | Page p50 | Page p95 | Selector p50 | Selector p95 "
        "| CPU per page: web + database |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for label, mode, n, page, sel, (web, db) in rows:
        path = "roll-up + today raw" if mode == "rollup" else "raw rows (before)"
        print(
            f"| {label} | {path} | {n:,} | {statistics.median(page):.0f} ms | "
            f"{pct(page, 0.95):.0f} ms | {statistics.median(sel):.0f} ms | "
            f"{pct(sel, 0.95):.0f} ms | {web:.0f} + {db:.0f} = {web + db:.0f} ms |"
        )


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a PostgreSQL backend on this machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def psql_count(table: str) -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed table names
        return cur.fetchone()[0]


if __name__ == "__main__":
    main()
