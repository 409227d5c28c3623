from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path: Path) -> None:
    """Each test stores uploads in its own folder (cookiecutter-django's habit)."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture(scope="session")
def fundus_jpeg() -> bytes:
    """The CC0 fundus photograph from scikit-image, as a camera would send it (uncropped JPEG)."""
    import cv2
    from skimage import data

    rgb = data.retina()
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return buf.tobytes()


@pytest.fixture
def celery_worker_process(settings, tmp_path: Path):
    """A real Celery worker (separate process, prefork pool) on Redis, against the test database.

    Yields a handle with the worker's Popen and its log path. The queue is purged first so a
    leftover message from an earlier run cannot interfere."""
    import os
    import subprocess
    import sys
    import time

    from django.db import connection

    from config.celery import app

    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "TEST_DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "TEST_CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "ML_THREADS": "2",
    }
    with app.connection_for_write() as conn:
        for queue in ("inference", "default"):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # noqa: S110 - queue does not exist yet
                pass
    log = tmp_path / "worker.log"
    handle = open(log, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "inference,default", "-c", "1",
         "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-n", f"test-{os.getpid()}@%h"],
        cwd=REPO_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if b"ready." in log.read_bytes():
            break
        if proc.poll() is not None:
            raise RuntimeError("celery worker exited:\n" + log.read_text(errors="replace"))
        time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("celery worker did not start:\n" + log.read_text(errors="replace"))

    class Worker:
        process = proc
        log_path = log

        @staticmethod
        def log_text() -> str:
            return log.read_text(errors="replace")

    try:
        yield Worker
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        handle.close()
