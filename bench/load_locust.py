"""Whole-platform load test (issue 6, item 7), closed model in the manner of Bahmni's performance
suite: a fixed population of users, each looping through its role's work with think time.

Run as a script it: builds a fresh PostgreSQL database (``eyebridge_load``), migrates and seeds it
(two sites, health workers, patients with completed screenings, a pharmacy with a kiosk, approved
prescriptions with their one-time codes, a hospital with referrals); starts gunicorn on
127.0.0.1, one real Celery inference worker (the shipped model) on Redis; runs locust headless;
waits for the inference queue to drain; stops everything and re-checks the invariants:

- no stock lot below zero, and the stock ledger reconciles;
- each prescription released at most once (reserved or completed dispenses);
- each screening has at most one result per eye;
- no screening stuck in queued/processing once the queue has drained;
- the audit chain verifies (``manage.py verify_audit_chain``).

It prints a Markdown table (per request type: count, failures, p50/p95/p99) and the invariants, and
exits 1 on any request failure or invariant violation.

    .venv/bin/python bench/load_locust.py --users 70 --duration 600     # make load (10 minutes)
    .venv/bin/python bench/load_locust.py --users 10 --duration 30      # smoke (tests/security)

The user mix (weights): health workers 50 (worklist, patient list, screening detail, screening
status, and 1 in 12 iterations a screening submission with the scikit-image retina photograph
through the API), pharmacists 10 (queue, prescription detail), hospital staff 7 (inbox, referral
detail), kiosks 3 of 70 users (present a prepared code, confirm the counselling, complete). Think time between
requests: 1-3 s (``--wait``).

Imported by locust (``locust -f bench/load_locust.py``) the same file is the locustfile.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import locust_rows, psql  # noqa: E402
from load_setup import PASSWORD, check_invariants, seed, server_env, wait_for_drain  # noqa: E402

# --- the locustfile part -----------------------------------------------------------------------

if "locust" in sys.modules or os.environ.get("LOAD_DATA"):
    from locust import HttpUser, between, events, task

    _DATA = json.loads(Path(os.environ["LOAD_DATA"]).read_text())
    _JPEG = Path(_DATA["jpeg"]).read_bytes()
    _low, _, _high = os.environ.get("LOAD_WAIT", "1,3").partition(",")
    _WAIT = between(float(_low), float(_high or _low))
    _counter = {"n": 0}

    def _next(items: list):
        _counter["n"] += 1
        return items[_counter["n"] % len(items)]

    class _Portal(HttpUser):
        abstract = True
        wait_time = _WAIT
        accounts_key = ""

        def on_start(self) -> None:
            username = _next(_DATA[self.accounts_key])
            self.client.get("/accounts/login/", name="GET /accounts/login/")
            token = self.client.cookies.get("csrftoken", "")
            with self.client.post(
                "/accounts/login/",
                data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
                headers={"Referer": self.host + "/accounts/login/"},
                name="POST /accounts/login/",
                allow_redirects=False,
                catch_response=True,
            ) as response:
                if response.status_code != 302:
                    response.failure(f"login {response.status_code}")
            self.username = username

        def read(self, path: str, name: str) -> None:
            with self.client.get(path, name=name, catch_response=True, allow_redirects=False) as r:
                if r.status_code != 200:  # status 0: no response (r.error says why)
                    r.failure(
                        f"{r.status_code} {r.headers.get('Location', '')} {r.error or ''}"[:200]
                    )

    class HealthWorker(_Portal):
        weight = 50
        accounts_key = "health_workers"

        def on_start(self) -> None:
            super().on_start()
            site = _DATA["site_of"][self.username]
            self.screenings = _DATA["screenings"][site]
            self.patients = _DATA["patients"][site]
            self.token = _DATA["tokens"][self.username]

        @task(3)
        def worklist(self) -> None:
            self.read("/screening/", "GET worklist")

        @task(2)
        def patient_list(self) -> None:
            self.read("/screening/patients/", "GET patient list")

        @task(4)
        def screening_detail(self) -> None:
            self.read(
                f"/screening/screenings/{random.choice(self.screenings)}/", "GET screening detail"
            )

        @task(2)
        def screening_status(self) -> None:
            self.read(
                f"/screening/screenings/{random.choice(self.screenings)}/status/",
                "GET screening status",
            )

        @task(1)
        def submit(self) -> None:
            with self.client.post(
                "/api/v1/screenings/",
                data={"patient": random.choice(self.patients), "symptoms": ["dryness"]},
                files={"left_image": ("left.jpg", _JPEG, "image/jpeg")},
                headers={"Authorization": f"Token {self.token}"},
                name="POST api screenings (submit)",
                catch_response=True,
            ) as r:
                if r.status_code != 201:
                    r.failure(f"{r.status_code} {r.text[:160]} {r.error or ''}"[:200])

    class Pharmacist(_Portal):
        weight = 10
        accounts_key = "pharmacists"

        @task(3)
        def queue(self) -> None:
            self.read("/pharmacy/", "GET pharmacist queue")

        @task(2)
        def prescription(self) -> None:
            self.read(
                f"/pharmacy/prescriptions/{random.choice(_DATA['prescriptions'])}/",
                "GET prescription detail",
            )

    class HospitalStaff(_Portal):
        weight = 7
        accounts_key = "hospital_staff"

        @task(3)
        def inbox(self) -> None:
            self.read("/referrals/", "GET hospital inbox")

        @task(2)
        def referral(self) -> None:
            self.read(f"/referrals/{random.choice(_DATA['referrals'])}/", "GET referral detail")

    class Kiosk(HttpUser):
        # A fixed number (3 of 70 by default), so that even a 10-user smoke run has a kiosk.
        fixed_count = int(os.environ.get("LOAD_KIOSK_USERS", "3"))
        wait_time = _WAIT

        def on_start(self) -> None:
            kiosk_id, secret = _next(_DATA["kiosks"])
            self.auth = {"Authorization": f"Kiosk {kiosk_id}:{secret}"}

        def _post(self, path: str, name: str, body: dict, expect: int, **headers: str):
            with self.client.post(
                path, json=body, headers={**self.auth, **headers}, name=name, catch_response=True
            ) as response:
                if response.status_code != expect:
                    response.failure(
                        f"{response.status_code} {response.text[:160]} {response.error or ''}"[:200]
                    )
                return response

        @task
        def dispense(self) -> None:
            if not _DATA["codes"]:
                return
            code = _DATA["codes"].pop()
            reserved = self._post(
                "/api/v1/kiosk/dispenses/",
                "POST kiosk dispense",
                {"code": code},
                201,
                **{"Idempotency-Key": str(uuid.uuid4())},
            )
            if reserved.status_code != 201:
                return
            dispense_id = reserved.json()["id"]
            self._post(
                f"/api/v1/kiosk/dispenses/{dispense_id}/confirm-counselling/",
                "POST kiosk confirm-counselling",
                {},
                200,
            )
            self._post(
                f"/api/v1/kiosk/dispenses/{dispense_id}/complete/", "POST kiosk complete", {}, 200
            )

    @events.quitting.add_listener
    def _dump_stats(environment, **kwargs) -> None:
        rows = locust_rows(environment)
        errors = [
            f"{e.name}: {e.error} x{e.occurrences}" for e in environment.stats.errors.values()
        ]
        Path(os.environ["LOAD_OUT"]).write_text(json.dumps({"rows": rows, "errors": errors[:20]}))


# --- the runner part ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=70)
    parser.add_argument("--duration", type=int, default=600, help="seconds of load")
    parser.add_argument("--spawn-rate", type=float, default=5)
    parser.add_argument("--wait", default="1,3", help="think time between requests, 'low,high' s")
    parser.add_argument("--codes", type=int, default=3000)
    # As platform/gunicorn.conf.py: cores + 1 sync workers, measured best on 2 cores
    # (docs/benchmarks.md, "Pharmacy dispense endpoint"; gthread let one process hog the clients).
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker-class", default="sync", help="gunicorn -k (sync, gthread)")
    parser.add_argument("--db", default="eyebridge_load")
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--port", type=int, default=8771)
    parser.add_argument("--drain-timeout", type=int, default=600)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="eyebridge-load-"))
    media = workdir / "media"
    env = server_env(args, media)
    load_before = os.getloadavg()
    print(f"building {args.db} (load average {load_before[0]:.1f}) ...", flush=True)
    psql(f"DROP DATABASE IF EXISTS {args.db} WITH (FORCE)")
    psql(f"CREATE DATABASE {args.db}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    data = seed(args)
    import cv2
    from skimage import data as skdata

    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(skdata.retina(), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]
    )
    assert ok
    (workdir / "retina.jpg").write_bytes(buf.tobytes())
    data["jpeg"] = str(workdir / "retina.jpg")
    (workdir / "data.json").write_text(json.dumps(data))

    from config.celery import app as celery_app

    with celery_app.connection_for_write() as conn:  # a leftover message must not run here
        for queue in ("inference", "default"):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # noqa: BLE001, S110 - the queue does not exist yet
                pass
    bin_dir = Path(sys.executable).parent
    procs = []
    worker_log = open(workdir / "worker.log", "wb")  # noqa: SIM115
    procs.append(
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "inference,default",
                "-c",
                "1",
                "--loglevel=WARNING",
                "-n",
                f"load-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    )
    procs.append(
        subprocess.Popen(
            [
                str(bin_dir / "gunicorn"),
                "config.wsgi",
                "-b",
                f"127.0.0.1:{args.port}",
                "-w",
                str(args.workers),
                "-k",
                args.worker_class,
                "--threads",
                str(args.threads),
                "--log-level",
                "warning",
                "--timeout",
                "120",
                # Longer than the users' think time: with gunicorn's default (2 s) the server closes
                # an idle keep-alive connection just as the client reuses it, and the request dies
                # with "connection reset by peer" (4-5 % of requests in the first runs). Behind a
                # proxy the proxy holds the client connections; here locust talks to gunicorn.
                "--keep-alive",
                "30",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
    )
    out = workdir / "stats.json"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{args.port}/accounts/login/", timeout=2)  # noqa: S310
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.2)
        command = [
            str(bin_dir / "locust"),
            "-f",
            __file__,
            "--headless",
            "-u",
            str(args.users),
            "-r",
            str(args.spawn_rate),
            "-t",
            f"{args.duration}s",
            "--host",
            f"http://127.0.0.1:{args.port}",
            "--only-summary",
            "--stop-timeout",
            "30",
        ]
        print("$ " + " ".join(command), flush=True)
        started = time.monotonic()
        subprocess.run(
            command,
            cwd=ROOT,
            check=False,
            stdout=subprocess.DEVNULL,
            env={
                **env,
                "LOAD_DATA": str(workdir / "data.json"),
                "LOAD_WAIT": args.wait,
                "LOAD_OUT": str(out),
                "LOAD_KIOSK_USERS": str(max(1, round(args.users * 3 / 70))),
            },
        )
        load_during = os.getloadavg()
        ran = time.monotonic() - started
        drained = wait_for_drain(args.drain_timeout)
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        worker_log.close()

    stats = json.loads(out.read_text())
    invariants = check_invariants(env)
    from screening.models import Screening

    submitted = Screening.objects.filter(images__isnull=False).distinct().count()
    print()
    print(
        f"{args.users} users, {args.duration} s (ran {ran:.0f} s), think time {args.wait} s, gunicorn "
        f"{args.workers}x{args.threads} {args.worker_class}, 1 Celery inference worker; load average before "
        f"{load_before[0]:.1f}, at the end {load_during[0]:.1f} ({os.cpu_count()} CPUs)"
    )
    print("| Request | Count | Failures | req/s | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in stats["rows"]:
        print(
            f"| {row['name']} | {row['count']} | {row['failures']} | {row['rps']:.2f} | {row['p50']:.0f} | "
            f"{row['p95']:.0f} | {row['p99']:.0f} | {row['max']:.0f} |"
        )
    for error in stats["errors"]:
        print("error: " + re.sub(r"\s+", " ", error)[:300])
    print(
        f"\nScreenings submitted during the run: {submitted}; queue drained {drained:.0f} s after the load"
    )
    print(
        "Invariants: "
        + ", ".join(f"{k} = {v}" for k, v in invariants.items() if k != "audit_chain_output")
    )
    failures = stats["rows"][-1]["failures"]
    ok = (
        failures == 0
        and invariants["negative_stock_lots"] == 0
        and invariants["stock_ledger_mismatches"] == 0
        and invariants["prescriptions_released_twice"] == 0
        and invariants["screenings_with_two_results_for_one_eye"] == 0
        and invariants["screenings_stuck"] == 0
        and invariants["audit_chain_ok"]
    )
    print("LOAD OK" if ok else "LOAD FAILED")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "stats": stats,
                    "invariants": invariants,
                    "submitted": submitted,
                    "ok": ok,
                    "load_before": load_before,
                    "load_end": load_during,
                }
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
