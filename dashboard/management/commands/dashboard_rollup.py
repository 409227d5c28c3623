"""Rebuild the dashboard's daily roll-up:

python manage.py dashboard_rollup --from 2026-01-01 --to 2026-11-30   # a range (e.g. once, after deploying)
python manage.py dashboard_rollup                                     # what the beat does
"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from dashboard.filters import EARLIEST
from dashboard.services import rollup_days_refresh, rollup_recent_refresh


def _date(raw: str, option: str) -> dt.date:
    try:
        value = dt.date.fromisoformat(raw)
    except ValueError:
        raise CommandError(f"{option}: not a date, use YYYY-MM-DD") from None
    if value < EARLIEST:
        raise CommandError(f"{option}: before {EARLIEST}")
    return value


class Command(BaseCommand):
    help = (
        "Recount the dashboard's daily roll-up for a date range (default: the beat's recent days)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="date_from", help="first local day, YYYY-MM-DD")
        parser.add_argument(
            "--to", dest="date_to", help="last local day, YYYY-MM-DD (default: today)"
        )

    def handle(self, *args, **options) -> None:
        if options["date_from"] is None and options["date_to"] is None:
            days = rollup_recent_refresh()
            self.stdout.write(f"recounted {len(days)} recent days")
            return
        today = timezone.localdate()
        if options["date_from"] is None:
            raise CommandError("--to needs --from")
        first = _date(options["date_from"], "--from")
        last = _date(options["date_to"], "--to") if options["date_to"] else today
        # Days after today hold nothing yet, and a roll-up row written now for them would be
        # ignored anyway (computed before they ended).
        last = min(last, today)
        if first > last:
            raise CommandError("--from is after --to (or after today)")
        n = rollup_days_refresh(
            days=(first + dt.timedelta(days=k) for k in range((last - first).days + 1))
        )
        self.stdout.write(f"recounted {n} days, {first} to {last}")
