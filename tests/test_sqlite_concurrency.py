"""The embedded default (`make run`: SQLite, no DATABASE_URL) holds a result page's parallel
image requests. Each photo and heatmap fetch writes an audit row and fails closed (503) when it
cannot, so SQLite's "database is locked" used to turn about a third of them into 503s."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import REPO_ROOT

# Rows made through the ORM in the server's own SQLite file: a health worker, a screening with both
# eyes' photos and heatmaps (files under MEDIA_ROOT), and a signed-in session for the worker.
SEED = r"""
import json
from django.conf import settings
from django.test import Client
from screening.models import EyeResult, ScreeningImage
from tests.factories import HealthWorkerFactory, ScreeningFactory

worker = HealthWorkerFactory()
site = worker.site_membership.site
screening = ScreeningFactory(patient__site=site, health_worker=worker)
for eye in ("left", "right"):
    photo, heatmap = f"fundus/{eye}.jpg", f"heatmaps/{eye}.png"
    for rel, body in ((photo, b"\xff\xd8\xff\xe0" + eye.encode() * 2000), (heatmap, b"\x89PNG" + eye.encode() * 500)):
        target = settings.MEDIA_ROOT / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    ScreeningImage.objects.create(screening=screening, eye=eye, path=photo, sha256="0" * 64,
                                  width=10, height=10, gradable=True)
    EyeResult.objects.create(screening=screening, eye=eye, probabilities={"N": 0.9}, top_class="N",
                             heatmap_path=heatmap, heatmap_class="N", model_version="v")
client = Client()
client.force_login(worker)
print("SEED=" + json.dumps({"screening": screening.pk,
                            "session": client.cookies[settings.SESSION_COOKIE_NAME].value}))
"""


def _embedded_env(tmp_path: Path) -> dict[str, str]:
    """What `make run` sees on a bare machine: no database, broker or media settings at all; the
    default SQLite file lives under EYEBRIDGE_VAR_DIR."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "TEST_", "DATABASE_URL", "CELERY_", "MEDIA_ROOT"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.dev",
        EYEBRIDGE_VAR_DIR=str(tmp_path / "var"),
        PYTHONPATH=str(REPO_ROOT),
    )
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    r = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_default_sqlite_settings_are_wal_immediate_with_a_busy_timeout(tmp_path):
    out = _manage(
        _embedded_env(tmp_path),
        "shell",
        "-c",
        "import json; from django.db import connection; c = connection.cursor();"
        " print(json.dumps({'engine': connection.vendor,"
        " 'journal': c.execute('PRAGMA journal_mode').fetchone()[0],"
        " 'busy_ms': c.execute('PRAGMA busy_timeout').fetchone()[0],"
        " 'mode': connection.transaction_mode}))",
    )
    found = json.loads(out.strip().splitlines()[-1])
    assert found["engine"] == "sqlite"
    assert found["journal"] == "wal"
    assert found["busy_ms"] >= 10_000
    assert found["mode"] == "IMMEDIATE"


def test_result_page_images_load_in_parallel_on_the_embedded_sqlite(tmp_path):
    env = _embedded_env(tmp_path)
    _manage(env, "migrate", "--noinput")
    seeded = re.search(r"^SEED=(.*)$", _manage(env, "shell", "-c", SEED), re.M)
    assert seeded, "seed script printed nothing"
    seed = json.loads(seeded.group(1))

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "server.log").open("wb")
    # The server `make run` starts: Django's threaded runserver, one thread per request.
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    cookie = f"sessionid={seed['session']}"

    def get(path: str) -> int:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Cookie": cookie})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - local server
                resp.read()
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        page = f"/screening/screenings/{seed['screening']}/"
        deadline = time.monotonic() + 60
        while True:
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}{page}", headers={"Cookie": cookie}
                )
                with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
                    html = resp.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        urls = sorted(set(re.findall(r'src="(/screening/(?:images|heatmaps)/\d+/)"', html)))
        assert len(urls) == 4, html[:3000]  # both eyes' photos and heatmaps

        statuses: list[int] = []
        with ThreadPoolExecutor(max_workers=16) as pool:
            for _ in range(6):  # six page loads, each with four requests per browser tab x 4
                statuses += pool.map(get, urls * 4)
        assert len(statuses) == 6 * 16
        failed = [s for s in statuses if s != 200]
        assert failed == [], (failed, (tmp_path / "server.log").read_text()[-3000:])
    finally:
        server.terminate()
        server.wait(10)
        log.close()

    # Every one of those reads was audited (the reason they could fail at all).
    out = _manage(
        env,
        "shell",
        "-c",
        "from accounts.models import AuditEvent;"
        " print(AuditEvent.objects.filter(url_name__in=['screening:image_file',"
        " 'screening:heatmap_file'], status_code=200).count())",
    )
    assert int(out.strip().splitlines()[-1]) == 6 * 16
