"""Ranking latency against generated hospital registries of growing size (the cost curve).

    .venv/bin/python bench/referrals_ranking.py                       # 1k, 10k, 100k, 1M
    .venv/bin/python bench/referrals_ranking.py --sizes 1000,100000 --queries 300

Registries are generated with realistic density: most hospitals cluster around Korean cities in
proportion to their population (a Gaussian spread that grows with the city), the rest are
scattered over the country. Query origins are drawn the same way (patients live where people
live), with required specialties and urgency drawn as the screening mix would give them. Rows go
in with COPY into a database of its own (default ``eyebridge_ref_bench``, created if missing), so
the benchmark never touches anyone's data. It times ``referrals.ranking.rank_hospitals``, the
function the proposal service and the candidates API call, end to end (SQL + geodesic + scoring).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (city, latitude, longitude, population in millions)
CITIES = [
    ("Seoul", 37.5665, 126.9780, 9.4),
    ("Busan", 35.1796, 129.0756, 3.3),
    ("Incheon", 37.4563, 126.7052, 3.0),
    ("Daegu", 35.8714, 128.6014, 2.4),
    ("Daejeon", 36.3504, 127.3845, 1.45),
    ("Gwangju", 35.1595, 126.8526, 1.42),
    ("Suwon", 37.2636, 127.0286, 1.2),
    ("Ulsan", 35.5384, 129.3114, 1.1),
    ("Goyang", 37.6584, 126.8320, 1.08),
    ("Yongin", 37.2411, 127.1776, 1.07),
    ("Changwon", 35.2280, 128.6811, 1.0),
    ("Seongnam", 37.4200, 127.1267, 0.92),
    ("Cheongju", 36.6424, 127.4890, 0.85),
    ("Bucheon", 37.5034, 126.7660, 0.8),
    ("Hwaseong", 37.1995, 126.8312, 0.9),
    ("Jeonju", 35.8242, 127.1480, 0.65),
    ("Cheonan", 36.8151, 127.1139, 0.66),
    ("Gimhae", 35.2285, 128.8894, 0.53),
    ("Pohang", 36.0190, 129.3435, 0.5),
    ("Jeju", 33.4996, 126.5312, 0.49),
    ("Gumi", 36.1195, 128.3446, 0.41),
    ("Wonju", 37.3422, 127.9202, 0.36),
    ("Jinju", 35.1800, 128.1076, 0.34),
    ("Suncheon", 34.9506, 127.4872, 0.28),
    ("Chuncheon", 37.8813, 127.7298, 0.28),
    ("Yeosu", 34.7604, 127.6622, 0.27),
    ("Gunsan", 35.9676, 126.7370, 0.26),
    ("Mokpo", 34.8118, 126.3922, 0.22),
    ("Gangneung", 37.7519, 128.8761, 0.21),
    ("Andong", 36.5684, 128.7294, 0.15),
]
RURAL_SHARE = 0.08
LAND_BOX = (34.3, 38.3, 126.1, 129.4)
SPECIALTY_SHARE = {
    "general": 0.85,
    "retina": 0.30,
    "glaucoma": 0.25,
    "cataract": 0.45,
    "cornea": 0.10,
    "paediatric": 0.08,
    "neuro": 0.04,
    "oculoplastics": 0.06,
}
FINDINGS = ["D", "D", "D", "G", "G", "C", "A", "H", "M", "O"]


def points(rng, n: int):
    """n (lat, lon) pairs with city-clustered density."""
    import numpy as np

    pops = np.array([c[3] for c in CITIES])
    city = rng.choice(len(CITIES), size=n, p=pops / pops.sum())
    lat0 = np.array([c[1] for c in CITIES])[city]
    lon0 = np.array([c[2] for c in CITIES])[city]
    sigma_km = 3.0 + 5.0 * np.sqrt(pops[city])  # Seoul ~18 km, a small city ~5 km
    lat = lat0 + rng.normal(0, 1, n) * sigma_km / 111.32
    lon = lon0 + rng.normal(0, 1, n) * sigma_km / (111.32 * np.cos(np.radians(lat0)))
    rural = rng.random(n) < RURAL_SHARE
    lat[rural] = rng.uniform(LAND_BOX[0], LAND_BOX[1], rural.sum())
    lon[rural] = rng.uniform(LAND_BOX[2], LAND_BOX[3], rural.sum())
    return np.clip(lat, -90, 90), np.clip(lon, -180, 180)


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def load(n: int, rng) -> float:
    """Replace the registry with n generated hospitals; return seconds taken."""
    import numpy as np
    from django.db import connection

    from referrals.models import Hospital, Specialty
    from referrals.services import specialties_ensure_defaults

    started = time.perf_counter()
    specialties_ensure_defaults()
    spec_ids = dict(Specialty.objects.values_list("code", "id"))
    through = Hospital.specialties.through._meta.db_table
    table = Hospital._meta.db_table
    lat, lon = points(rng, n)
    slots = rng.integers(0, 30, n)
    wait = rng.integers(1, 60, n)
    accepts = rng.random(n) < 0.9
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table}, {through} RESTART IDENTITY CASCADE")
        pg = cursor.cursor
        columns = (
            "name, name_en, address, latitude, longitude, phone, is_partner, accepts_referrals, "
            "weekly_capacity, open_slots, typical_wait_days, created_at, updated_at"
        )
        with pg.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for i in range(n):
                copy.write_row(
                    (
                        f"안과 {i}",
                        f"Eye clinic {i}",
                        f"addr {i}",
                        float(lat[i]),
                        float(lon[i]),
                        "",
                        True,
                        bool(accepts[i]),
                        int(slots[i]) * 4,
                        int(slots[i]),
                        int(wait[i]),
                        "now",
                        "now",
                    )
                )
        cursor.execute(f"SELECT id FROM {table} ORDER BY id")  # noqa: S608 - table name from the model
        ids = [row[0] for row in cursor.fetchall()]
        with pg.copy(f"COPY {through} (hospital_id, specialty_id) FROM STDIN") as copy:
            for code, share in SPECIALTY_SHARE.items():
                chosen = np.nonzero(rng.random(n) < share)[0]
                for j in chosen:
                    copy.write_row((ids[j], spec_ids[code]))
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute(f"VACUUM ANALYZE {through}")
    return time.perf_counter() - started


def measure(queries: int, rng) -> dict:
    from referrals import ranking

    lat, lon = points(rng, queries + 20)
    timings, radii, counts = [], [], []
    for i in range(queries + 20):
        findings = list(set(rng.choice(FINDINGS, size=int(rng.integers(1, 3)))))
        required = ranking.required_specialties(findings=findings, triage="referable")
        urgent = bool(rng.random() < 0.2)
        t0 = time.perf_counter()
        result = ranking.rank_hospitals(
            latitude=float(lat[i]), longitude=float(lon[i]), required=required, urgent=urgent
        )
        elapsed = (time.perf_counter() - t0) * 1000
        if i >= 20:  # the first 20 warm the connection and caches
            timings.append(elapsed)
            radii.append(result.radius_km)
            counts.append(len(result.candidates))
    timings.sort()

    def pct(p: float) -> float:
        return timings[min(len(timings) - 1, math.ceil(p / 100 * len(timings)) - 1)]

    return {
        "p50": statistics.median(timings),
        "p95": pct(95),
        "p99": pct(99),
        "mean": statistics.fmean(timings),
        "radius_median": statistics.median(radii),
        "widened_share": sum(r > ranking.RADII_KM[0] for r in radii) / len(radii),
        "empty": sum(c == 0 for c in counts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait after loading")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/eyebridge_ref_bench"
        ),
    )
    args = parser.parse_args()

    ensure_database(args.database_url)
    os.environ["TEST_DATABASE_URL"] = args.database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    import django
    import numpy as np

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(
        f"# ranking latency, {args.queries} queries per size, k=5, survivor cap, geodesic on survivors"
    )
    print(
        "| hospitals | insert (s) | p50 (ms) | p95 (ms) | p99 (ms) | mean (ms) | median radius (km) "
        "| widened | empty | load avg (1 min) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        rng = np.random.default_rng(args.seed)
        load_s = load(size, rng)
        if args.settle:
            time.sleep(args.settle)  # let autovacuum and the page cache settle after the load
        r = measure(args.queries, np.random.default_rng(args.seed + 1))
        print(
            f"| {size:,} | {load_s:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | "
            f"{r['mean']:.1f} | {r['radius_median']:.0f} | {r['widened_share']:.0%} | {r['empty']} | "
            f"{os.getloadavg()[0]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
