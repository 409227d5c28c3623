"""Each app declares its audited URL names in its own audit_urls.py; accounts collects them."""

from __future__ import annotations

import importlib

import pytest
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.exceptions import ImproperlyConfigured

from accounts import audit

APPS = ["accounts", "screening", "pharmacy", "referrals", "dashboard"]


@pytest.fixture
def restored_registry():
    yield
    audit.collect()


@pytest.mark.parametrize("app", APPS)
def test_every_apps_declarations_are_collected(app):
    module = importlib.import_module(f"{app}.audit_urls")
    for name, target in module.AUDITED.items():
        assert audit.AUDITED_URLS[name] is target
    for name, reason in module.EXEMPT.items():
        assert audit.EXEMPT_URLS[name] == reason and reason


def test_collecting_twice_gives_the_same_tables():
    audited, exempt = list(audit.AUDITED_URLS.items()), list(audit.EXEMPT_URLS.items())
    audit.collect()
    assert list(audit.AUDITED_URLS.items()) == audited
    assert list(audit.EXEMPT_URLS.items()) == exempt


def test_a_url_name_declared_twice_is_refused(restored_registry):
    with pytest.raises(ImproperlyConfigured, match="already classified"):
        audit.register(audited={"api-patient": audit.Target("patient")}, exempt={}, source="tests")
    with pytest.raises(ImproperlyConfigured, match="both audited and exempt"):
        audit.register(
            audited={"brand-new": audit.Target("patient")},
            exempt={"brand-new": "no data"},
            source="tests",
        )


def test_the_sign_in_receivers_are_connected_once():
    audit.connect_signals()  # a second connection (ready() runs it once already) is a no-op
    for signal, uid in (
        (user_logged_in, "accounts.audit.login"),
        (user_login_failed, "accounts.audit.login_failed"),
    ):
        assert sum(1 for lookup_key, *_ in signal.receivers if lookup_key[0] == uid) == 1
