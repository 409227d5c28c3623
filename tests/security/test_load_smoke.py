"""The load test's smoke version (issue 6, item 7): bench/load_locust.py with 10 users for 30 s
against gunicorn + PostgreSQL + Redis + a real Celery inference worker, on its own database.

72 s to 3 minutes on the shared 2-core machine (migrating and seeding the database, and the
sign-ins' password hashing, dominate), hence `slow` (make test-long). The 70-user, 10-minute run is
`make load`; figures in docs/reliability.md, "Load"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.slow
def test_load_smoke_has_no_errors_and_keeps_the_invariants(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    run = subprocess.run(
        [
            sys.executable,
            "bench/load_locust.py",
            "--users",
            "10",
            "--duration",
            "30",
            "--codes",
            "300",
            "--db",
            "eyebridge_load_smoke",
            "--redis-db",
            "14",
            "--port",
            "8772",
            "--drain-timeout",
            "300",
            "--json",
            str(out),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    result = json.loads(out.read_text())
    total = result["stats"]["rows"][-1]
    assert total["count"] > 50 and total["failures"] == 0
    names = {row["name"] for row in result["stats"]["rows"]}
    # Every kind of work happened: portal reads, a screening submission, a kiosk dispense.
    assert {
        "GET worklist",
        "GET pharmacist queue",
        "GET hospital inbox",
        "POST kiosk dispense",
    } <= names
    invariants = result["invariants"]
    assert invariants["negative_stock_lots"] == 0
    assert invariants["prescriptions_released_twice"] == 0
    assert invariants["screenings_with_two_results_for_one_eye"] == 0
    assert invariants["screenings_stuck"] == 0
    assert invariants["audit_chain_ok"]
