"""Demo data for `make run`: every app seeds its own part, in the order data flows.

screening's centres and health workers come first, then the pharmacies and kiosks, the partner
hospitals, the dashboard's public-health login and the reading centre's graders, and the demo
screenings last, so that the prescriptions, referrals and grading cases their results open find
somewhere to go. Then a year of past screenings (seed_demo_history), the prescriptions and
referrals that came of them, and the dashboard's roll-up over that year; ``--no-screenings``
leaves out both kinds. Each command is idempotent, so this one is too. A failing part stops the
seed with its error: a demo that silently lacks its pharmacy would mislead whoever tries it."""

from __future__ import annotations

import datetime as dt

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from config.demo import demo_password, ensure_user

PARTS = (
    "seed_demo_pharmacy",
    "seed_demo_referrals",
    "seed_demo_dashboard",
    "seed_demo_grading",
)
HISTORY_PARTS = ("seed_demo_pharmacy", "seed_demo_referrals")
HISTORY_DAYS = 365  # how far back screening's seed_demo_history reaches


class Command(BaseCommand):
    help = "Load the demo: centres, one user per role, pharmacies, hospitals and screenings."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--no-screenings", action="store_true", help="Skip the demo screenings."
        )

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            admin = ensure_user("admin", Role.ADMIN, is_staff=True, is_superuser=True)
            if not admin.is_superuser:
                User.objects.filter(pk=admin.pk).update(is_staff=True, is_superuser=True)
        call_command("seed_demo_screening", "--no-screenings", stdout=self.stdout)
        for command in PARTS:
            call_command(command, stdout=self.stdout)
        if not options["no_screenings"]:
            call_command("seed_demo_screening", stdout=self.stdout)
            # A year of past screenings, then each app's part of their story in the order data
            # flows, and the dashboard's daily roll-up over that year.
            call_command("seed_demo_history", stdout=self.stdout)
            for command in HISTORY_PARTS:
                call_command(command, "--history", stdout=self.stdout)
            # The history is written directly, not through the services: compute the recall
            # (who is due) over it, referrals included.
            call_command("recall_refresh", stdout=self.stdout)
            since = timezone.localdate() - dt.timedelta(days=HISTORY_DAYS + 7)
            call_command("dashboard_rollup", "--from", since.isoformat(), stdout=self.stdout)
        self.stdout.write(
            self.style.SUCCESS(
                "Demo data ready. Logins: chw, chw2, pharmacist, hospital, publichealth, grader, "
                "grader2, grader3, admin "
                f"(password: {demo_password()})"
            )
        )
