"""The dashboard's own demo data (called by screening's seed_demo)."""

from __future__ import annotations

import io

from django.core.management import call_command

from accounts.models import User
from dashboard.models import DashboardAccess
from dashboard.selectors import dashboard_scope


def test_seed_demo_dashboard_creates_a_scoped_public_health_account_once(db):
    call_command("seed_demo_dashboard", stdout=io.StringIO())
    call_command("seed_demo_dashboard", stdout=io.StringIO())
    user = User.objects.get(username="publichealth")
    assert user.role == "" and user.check_password("eyebridge-demo")
    assert DashboardAccess.objects.get().user == user
    assert dashboard_scope(user=user).regions == ("강원", "전남")
