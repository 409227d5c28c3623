from __future__ import annotations

import pytest

from config.celery import app as celery_app


@pytest.fixture(autouse=True)
def _tasks_run_inline():
    """Run tasks enqueued by the code under test in-process (Celery's own eager mode), so that a
    test sees the patient message that a worker would send. Delivery semantics are tested by
    calling the idempotent services twice."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous
