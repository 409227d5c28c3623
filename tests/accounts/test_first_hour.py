"""Small things a new user meets in the first hour: the language picked on the sign-in page,
zero-padded dates, the favicon."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.staticfiles import finders
from django.template import Context, Template
from django.utils import timezone, translation

from accounts.models import Role, User
from tests.conftest import REPO_ROOT
from tests.factories import HealthWorkerFactory, UserFactory

pytestmark = pytest.mark.django_db


def _sign_in(client, username: str):
    return client.post("/accounts/login/", {"username": username, "password": "pw-test-123"})


def test_language_picked_on_the_login_page_is_kept_after_sign_in(client):
    worker = HealthWorkerFactory(preferred_language="ko")
    client.post("/accounts/language/", {"language": "en", "next": "/accounts/login/"})
    assert "Sign in" in client.get("/accounts/login/").content.decode()

    response = _sign_in(client, worker.username)
    assert response.status_code == 302
    assert response.cookies["django_language"].value == "en"
    worker.refresh_from_db()
    assert worker.preferred_language == "en"
    page = client.get("/screening/", follow=True).content.decode()
    assert 'lang="en"' in page and "Worklist" in page


def test_without_a_pick_the_saved_language_is_not_overwritten(client):
    worker = HealthWorkerFactory(preferred_language="en")
    # A Korean browser on the sign-in page, no choice made there.
    client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="ko")
    assert _sign_in(client, worker.username).status_code == 302
    worker.refresh_from_db()
    assert worker.preferred_language == "en"
    assert 'lang="en"' in client.get("/screening/", follow=True).content.decode()


def test_a_failed_sign_in_keeps_the_pick_for_the_next_try(client):
    worker = UserFactory(role=Role.PHARMACIST, preferred_language="ko")
    client.post("/accounts/language/", {"language": "en", "next": "/accounts/login/"})
    bad = client.post("/accounts/login/", {"username": worker.username, "password": "wrong"})
    assert bad.status_code == 200 and 'lang="en"' in bad.content.decode()
    assert _sign_in(client, worker.username).status_code == 302
    assert User.objects.get(pk=worker.pk).preferred_language == "en"


@pytest.mark.parametrize("language", ["ko", "en"])
def test_short_dates_are_zero_padded_in_both_languages(language):
    when = dt.datetime(2026, 12, 2, 4, 5, tzinfo=dt.UTC)
    template = Template(
        '{{ when|date:"SHORT_DATETIME_FORMAT" }}|{{ when|date:"SHORT_DATE_FORMAT" }}'
    )
    with translation.override(language), timezone.override("UTC"):
        rendered = template.render(Context({"when": when}))
    assert rendered == "2026-12-02 04:05|2026-12-02"


def test_every_page_links_a_favicon_that_is_served(client):
    html = client.get("/accounts/login/").content.decode()
    icon = re.search(r'<link rel="icon" href="([^"]+)"', html)
    assert icon, html[:1000]
    assert icon.group(1) == "/static/favicon.svg"
    path = finders.find("favicon.svg")
    assert path is not None
    with open(path, encoding="utf-8") as handle:
        assert handle.read().lstrip().startswith("<svg")


def test_make_run_banner_lists_every_demo_login():
    """The usernames the seed commands create, read from their source, all appear in the banner."""
    seeds = [
        REPO_ROOT / "config/management/commands/seed_demo.py",
        REPO_ROOT / "screening/management/commands/seed_demo_screening.py",
        REPO_ROOT / "dashboard/management/commands/seed_demo_dashboard.py",
        REPO_ROOT / "pharmacy/management/commands/seed_demo_pharmacy.py",
        REPO_ROOT / "referrals/management/commands/seed_demo_referrals.py",
        REPO_ROOT / "grading/management/commands/seed_demo_grading.py",
    ]
    names = set()
    for seed in seeds:
        text = seed.read_text(encoding="utf-8")
        names |= set(re.findall(r'ensure_user\(\s*"([a-z0-9_]+)"', text))
        names |= set(re.findall(r'username="([a-z0-9_]+)"', text))
    assert {"chw", "pharmacist", "hospital", "publichealth", "admin"} <= names
    banner = next(
        line
        for line in (REPO_ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
        if "Demo logins" in line
    )
    listed = set(re.findall(r"[a-z0-9_]+", banner.split(":", 1)[1].split("):", 1)[1]))
    assert names <= listed, names - listed
