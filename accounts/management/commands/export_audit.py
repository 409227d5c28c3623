"""Export audit events as CSV (to stdout or a file), optionally for a date range."""

from __future__ import annotations

import datetime as dt
import sys

from django.core.management.base import BaseCommand, CommandError

from accounts.audit import audit_record
from accounts.audit_export import csv_rows
from accounts.models import AuditEvent


class Command(BaseCommand):
    help = "Export audit events as CSV. The export is itself recorded in the audit trail."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--since", help="YYYY-MM-DD (UTC, inclusive)")
        parser.add_argument("--until", help="YYYY-MM-DD (UTC, exclusive)")
        parser.add_argument("--output", "-o", help="file to write (default: stdout)")

    def handle(self, *args, **options) -> None:
        qs = AuditEvent.objects.order_by("id")
        for key, lookup in (("since", "created_at__gte"), ("until", "created_at__lt")):
            if options[key]:
                try:
                    day = dt.datetime.strptime(options[key], "%Y-%m-%d").replace(tzinfo=dt.UTC)
                except ValueError as exc:
                    raise CommandError(f"--{key} must be YYYY-MM-DD") from exc
                qs = qs.filter(**{lookup: day})
        count = 0
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8", newline="") as out:
                count = self._write(qs, out)
        else:
            count = self._write(qs, sys.stdout)
        audit_record(
            action="export",
            actor_type="system",
            object_type="audit_event",
            url_name="manage.py export_audit",
            extra={
                "rows": count,
                "since": options["since"] or "",
                "until": options["until"] or "",
            },
        )
        self.stderr.write(f"exported {count} events")

    @staticmethod
    def _write(qs, out) -> int:  # noqa: ANN001
        """Write the CSV; returns the number of events (the first chunk is the header)."""
        chunks = -1
        for chunks, chunk in enumerate(csv_rows(qs)):  # noqa: B007
            out.write(chunk)
        return max(chunks, 0)
