"""Submit-to-completed latency of screenings through the real pipeline.

One CPU inference worker (Celery, prefork, concurrency 1) on Redis, PostgreSQL, the shipped model.
Phase 1: N screenings of two eyes submitted one after another (each waits for its result):
p50/p95 submit-to-completed latency. Phase 2: N submitted at once: screenings per minute.

    .venv/bin/python bench/screening_latency.py [--n 50] [--db eyebridge_bench]

Writes a JSON summary to build/bench/screening_latency.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--db", default="eyebridge_bench")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()

    media = tempfile.mkdtemp(prefix="eyebridge-bench-media-")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "TEST_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.db}",
        "TEST_CELERY_BROKER_URL": args.broker,
        "MEDIA_ROOT": media,
        "ML_THREADS": "2",
    }
    os.environ.update(env)
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"DROP DATABASE IF EXISTS {args.db}"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"CREATE DATABASE {args.db}"],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    import cv2
    from django.core.files.uploadedfile import SimpleUploadedFile
    from skimage import data

    from accounts.models import User
    from config.celery import app
    from screening.models import Patient, Screening
    from screening.services import screening_submit
    from tests.factories import HealthWorkerFactory, PatientFactory

    with app.connection_for_write() as conn:
        for q in ("inference", "default"):
            try:
                conn.default_channel.queue_purge(q)
            except Exception:  # noqa: S110
                pass

    photo = cv2.imencode(".jpg", cv2.cvtColor(data.retina(), cv2.COLOR_RGB2BGR))[1].tobytes()
    hw = cast(User, HealthWorkerFactory(username="bench-hw"))
    patient = cast(Patient, PatientFactory(site=hw.site_membership.site))
    # Downstream apps' tasks go to the default queue; this worker serves only inference, so the
    # figure is the screening pipeline's own.
    log = open(Path(media) / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "inference",
            "-c",
            "1",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        while b"ready." not in (Path(media) / "worker.log").read_bytes():
            time.sleep(0.2)

        def submit() -> int:
            return screening_submit(
                user=hw,
                patient_id=patient.id,
                left_image=SimpleUploadedFile("l.jpg", photo),
                right_image=SimpleUploadedFile("r.jpg", photo),
            ).id

        def wait(ids: list[int]) -> None:
            pending = set(ids)
            while pending:
                done = set(
                    Screening.objects.filter(
                        id__in=pending, status__in=["completed", "ungradable", "failed"]
                    ).values_list("id", flat=True)
                )
                pending -= done
                if pending:
                    time.sleep(0.02)

        # Warm-up: the first task loads the model into the worker process.
        wait([submit()])
        latencies = []
        for _ in range(args.n):
            t0 = time.perf_counter()
            sid = submit()
            wait([sid])
            latencies.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ids = [submit() for _ in range(args.n)]
        wait(ids)
        burst = time.perf_counter() - t0
        failed = Screening.objects.exclude(status="completed").count()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()

    latencies.sort()
    summary = {
        "screenings": args.n,
        "eyes_per_screening": 2,
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3),
        "max_s": round(latencies[-1], 3),
        "burst_screenings_per_minute": round(args.n / burst * 60, 1),
        "not_completed": failed,
        "machine": f"{os.cpu_count()} cores",
    }
    out = ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "screening_latency.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
