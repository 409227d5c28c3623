from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from referrals.imports import hospitals_import_csv


class Command(BaseCommand):
    help = (
        "Import hospitals from a CSV file: every row is validated, then all or none are imported."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="Validate only; import nothing.")

    def handle(self, *args, file: Path, dry_run: bool, **options) -> None:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc}") from exc
        report = hospitals_import_csv(data=data, dry_run=dry_run)
        if not report.ok:
            for error in report.errors:
                self.stderr.write(f"row {error['row']}: {error['field']}: {error['message']}")
            raise CommandError(f"{len(report.errors)} error(s); nothing was imported.")
        if dry_run:
            self.stdout.write(f"{len(report.rows)} rows are valid (dry run: nothing imported).")
        else:
            self.stdout.write(self.style.SUCCESS(f"{report.created} hospitals imported."))
