"""Export audit events as CSV (to stdout or a file), optionally for a date range."""

from __future__ import annotations

import datetime as dt
import sys

from django.core.management.base import BaseCommand, CommandError

from accounts.audit_export import csv_rows
from accounts.selectors import audit_events_between
from accounts.services import audit_export_record


class Command(BaseCommand):
    help = "Export audit events as CSV. The export is itself recorded in the audit trail."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", help="YYYY-MM-DD (UTC, inclusive)")
        parser.add_argument("--until", help="YYYY-MM-DD (UTC, exclusive)")
        parser.add_argument("--output", "-o", help="file to write (default: stdout)")

    def handle(self, *args, **options) -> None:
        qs = audit_events_between(
            since=self._day(options, "since"), until=self._day(options, "until")
        )
        count = 0
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8", newline="") as out:
                count = self._write(qs, out)
        else:
            count = self._write(qs, sys.stdout)
        audit_export_record(rows=count, since=options["since"] or "", until=options["until"] or "")
        self.stderr.write(f"exported {count} events")

    @staticmethod
    def _day(options: dict, key: str) -> dt.datetime | None:
        if not options[key]:
            return None
        try:
            return dt.datetime.strptime(options[key], "%Y-%m-%d").replace(tzinfo=dt.UTC)
        except ValueError as exc:
            raise CommandError(f"--{key} must be YYYY-MM-DD") from exc

    @staticmethod
    def _write(qs, out) -> int:
        """Write the CSV; returns the number of events (the first chunk is the header)."""
        chunks = -1
        for chunks, chunk in enumerate(csv_rows(qs)):  # noqa: B007
            out.write(chunk)
        return max(chunks, 0)
