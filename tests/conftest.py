from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--run-slow", action="store_true", help="also run the tests marked slow (make test-long)"
    )


def pytest_collection_modifyitems(config, items) -> None:
    """`slow` tests (soak, 1,000-example fuzzing, load) run only with --run-slow: deselected, not
    skipped, so that `make test` reports no skips and `make test-long -m slow --run-slow` runs them."""
    if config.getoption("--run-slow"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


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
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]
    )
    assert ok
    return buf.tobytes()


def worker_env(settings, **extra: str) -> dict[str, str]:
    """Environment for a worker process that sees the test database, broker and media folder."""
    import os

    from django.db import connection

    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "TEST_DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "TEST_CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "ML_THREADS": "2",
        **extra,
    }


def purge_queues() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in ("inference", "default"):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # noqa: S110 - queue does not exist yet
                pass


class WorkerHandle:
    def __init__(self, process, log_path: Path, handle) -> None:
        self.process = process
        self.log_path = log_path
        self._handle = handle

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        import subprocess

        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._handle.close()


def start_worker(
    env: dict[str, str],
    log: Path,
    *,
    app: str = "config",
    queues: str = "inference,default",
    timeout: float = 90,
) -> WorkerHandle:
    """Start `celery worker` (prefork, concurrency 1) and wait until it is ready."""
    import subprocess
    import sys
    import time

    handle = open(log, "ab")  # noqa: SIM115
    start = log.stat().st_size if log.exists() else 0
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app,
            "worker",
            "-Q",
            queues,
            "-c",
            "1",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"test-{time.monotonic_ns()}@%h",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if b"ready." in log.read_bytes()[start:]:
            return WorkerHandle(proc, log, handle)
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("celery worker did not start:\n" + log.read_text(errors="replace")[-5000:])


@pytest.fixture
def celery_worker_process(settings, tmp_path: Path):
    """A real Celery worker (separate process, prefork pool) on Redis, against the test database.
    The queues are purged first so a leftover message from an earlier run cannot interfere."""
    purge_queues()
    worker = start_worker(worker_env(settings), tmp_path / "worker.log")
    try:
        yield worker
    finally:
        worker.stop()
