from __future__ import annotations

import pytest

from tests.factories import SiteFactory
from tests.grading.factories import GraderFactory, ReadingCentreFactory


@pytest.fixture
def site(db):
    return SiteFactory()


@pytest.fixture
def centre(site):
    return ReadingCentreFactory(sites=[site])


@pytest.fixture
def graders(centre):
    """Three graders of the centre: enough for a first read, a second and an arbitration."""
    return [GraderFactory(centre=centre, first_name=name) for name in ("Ann", "Ben", "Cho")]


@pytest.fixture
def inline_tasks(monkeypatch):
    """Tasks sent by name (send_task) run here, as a worker would run them: the downstream
    effects of a final read are then visible when the service returns (after commit)."""
    from config.celery import app

    app.loader.import_default_modules()  # every app's tasks.py, as a worker imports them
    sent: list[tuple[str, list]] = []

    def send_task(name: str, args=None, **kwargs):
        sent.append((name, list(args or [])))
        task = app.tasks.get(name)
        if task is not None:
            task.apply(args=args, throw=True)

    monkeypatch.setattr(app, "send_task", send_task)
    return sent
