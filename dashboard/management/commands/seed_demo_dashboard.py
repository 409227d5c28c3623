"""Demo data of the dashboard: a public-health account that sees two of the demo's regions.

python manage.py seed_demo_dashboard   # run by `manage.py seed_demo` with the other apps' parts

Idempotent: running it twice changes nothing the second time. The roll-up needs no seeding: the
beat (or ``manage.py dashboard_rollup``) counts whatever screenings the demo holds.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from config.demo import ensure_user
from dashboard.models import DashboardAccess

# Two of the three regions of screening's demo sites, so that the demo shows a scoped dashboard
# next to the admin's view of every region.
REGIONS = ["강원", "전남"]


class Command(BaseCommand):
    help = "Load the dashboard's demo account (publichealth) and the regions it may see."

    def handle(self, *args: object, **options: object) -> None:
        with transaction.atomic():
            # No role: dashboard access is the DashboardAccess row, not an accounts.Role.
            user = ensure_user("publichealth", "", first_name="보건", last_name="담당")
            DashboardAccess.objects.get_or_create(user=user, defaults={"regions": REGIONS})
        self.stdout.write(f"Dashboard user '{user.username}' sees {', '.join(REGIONS)}.")
