"""The kiosk brute-force caps under a real race (issue 14, item 5): gunicorn with several worker
processes on the test database, started here on a free port, and 50 client threads released at the
same instant by a barrier, each with its own HTTP connection. At most ``cap`` presentations may be
evaluated; every other one is a 429, however the requests interleave across processes."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from pharmacy.models import Dispense, DispenseCode, Kiosk, StockLot
from tests.conftest import REPO_ROOT, worker_env
from tests.pharmacy.conftest import N, at_once, unknown_code
from tests.pharmacy.factories import approved_prescription, stock

pytestmark = pytest.mark.django_db(transaction=True)

CAP = 10
WORKERS = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


@dataclass(frozen=True)
class Server:
    port: int
    pid: int


@pytest.fixture(scope="module")
def web(django_db_setup, tmp_path_factory):
    """gunicorn (sync workers, one request at a time each) on the test database."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = worker_env(
        django_settings,
        PHARMACY_CODE_MAX_ATTEMPTS=str(CAP),
        PHARMACY_KIOSK_MAX_CODE_FAILURES=str(CAP),
        PHARMACY_KIOSK_FAILURE_WINDOW_SECONDS="600",
    )
    env.pop("GUNICORN_BIND", None)
    log = open(log_path, "ab")  # noqa: SIM115
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
            "--preload",
            "--timeout",
            "60",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                # No credentials: a 401 proves Django answers.
                if _get(port, "/api/v1/kiosk/heartbeat/") in (401, 405):
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(Path(log_path).read_text(errors="replace")[-4000:])
            time.sleep(0.3)
        yield Server(port=port, pid=server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _present_all(web: Server, kiosk: Kiosk, secret: str, code_for) -> list[tuple[int, str]]:
    """POST kiosk/dispenses/ N times at once (code_for(i) is the i-th code); (status, error code)."""
    headers = {
        "Authorization": f"Kiosk {kiosk.kiosk_id}:{secret}",
        "Content-Type": "application/json",
    }
    # Connected before the barrier, each its own: the race is between requests, not handshakes.
    conns = [http.client.HTTPConnection("127.0.0.1", web.port, timeout=60) for _ in range(N)]
    for conn in conns:
        conn.connect()

    def post(i: int) -> tuple[int, str]:
        conn = conns[i]
        conn.request(
            "POST",
            "/api/v1/kiosk/dispenses/",
            body=json.dumps({"code": code_for(i)}),
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        response = conn.getresponse()
        payload = json.loads(response.read() or b"{}")
        return response.status, payload.get("code", "")

    try:
        return at_once(post)
    finally:
        for conn in conns:
            conn.close()


def test_fiftyunknown_codes_at_once_get_at_most_cap_404s(web, kiosk_and_secret):
    kiosk, secret = kiosk_and_secret

    results = _present_all(web, kiosk, secret, unknown_code)

    statuses = Counter(status for status, _ in results)
    assert statuses == {404: CAP, 429: N - CAP}, statuses
    assert {code for status, code in results if status == 429} == {"kiosk_rate_limited"}
    kiosk.refresh_from_db()
    assert kiosk.code_failures == CAP


def test_one_code_fifty_times_at_once_is_evaluated_at_most_cap_times(
    web, pharmacist, kiosk_and_secret, medication
):
    kiosk, secret = kiosk_and_secret
    lot = stock(kiosk, medication, 10)
    prescription, code = approved_prescription(pharmacist, medication)

    results = _present_all(web, kiosk, secret, lambda i: code)

    statuses = Counter(status for status, _ in results)
    assert statuses[201] == 1, statuses
    assert N - statuses[429] == CAP, statuses  # 1 reservation + 9 refusals, each one evaluated
    assert {code for status, code in results if status == 429} == {"code_locked"}
    assert DispenseCode.objects.get(prescription=prescription).attempts == CAP
    assert Dispense.objects.filter(prescription=prescription).count() == 1
    assert StockLot.objects.get(pk=lot.pk).quantity == 9


def test_a_burst_of_guesses_with_one_right_code_still_evaluates_at_most_cap_unknowns(
    web, pharmacist, kiosk_and_secret, medication
):
    """The right code hidden in a burst of wrong ones: the unknown ones still stop at the cap, and
    the right one is either served (it came before the cap) or refused like the rest, never
    evaluated past it as an oracle."""
    kiosk, secret = kiosk_and_secret
    stock(kiosk, medication, 3)
    _, code = approved_prescription(pharmacist, medication)

    results = _present_all(web, kiosk, secret, lambda i: code if i == N // 2 else unknown_code(i))

    statuses = Counter(status for status, _ in results)
    assert statuses[404] == CAP, statuses
    assert results[N // 2] in ((201, ""), (429, "kiosk_rate_limited")), results[N // 2]
    assert statuses[429] == N - CAP - (results[N // 2][0] == 201)
    kiosk.refresh_from_db()
    assert kiosk.code_failures == CAP


def test_the_server_under_test_has_several_processes(web):
    """The races above run across processes, not only across threads of one process."""
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(web.pid)], capture_output=True, text=True, check=True
    )
    assert len(out.stdout.split()) == WORKERS
