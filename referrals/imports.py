"""The hospital registry CSV import (admin upload and `manage.py import_hospitals`)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from config.errors import InvalidInput
from referrals import ranking
from referrals.models import (
    Hospital,
)
from screening.models import Triage

REFERRABLE_TRIAGE = {Triage.REFERABLE, Triage.URGENT, Triage.UNGRADABLE}
MAX_TEXT = 2000


# --- hospital registry import ---------------------------------------------------------------

IMPORT_COLUMNS = (
    "name",
    "name_en",
    "address",
    "latitude",
    "longitude",
    "phone",
    "is_partner",
    "accepts_referrals",
    "weekly_capacity",
    "open_slots",
    "typical_wait_days",
    "specialties",
)
IMPORT_REQUIRED = ("name", "latitude", "longitude")
IMPORT_MAX_BYTES = 5 * 1024 * 1024
IMPORT_MAX_ROWS = 20000
TRUE_WORDS = {"1", "true", "yes", "y", "t", "예", "o"}
FALSE_WORDS = {"0", "false", "no", "n", "f", "아니오", "x"}


class ImportReport:
    """What an import found: per-row errors (row numbers as in a spreadsheet, header = 1)."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.created = 0
        self.dry_run = False

    def error(self, row: int, field: str, message: str) -> None:
        self.errors.append({"row": row, "field": field, "message": str(message)})

    @property
    def ok(self) -> bool:
        return not self.errors


def _parse_bool(raw: str, default: bool) -> bool | None:
    value = raw.strip().lower()
    if value == "":
        return default
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    return None


def _parse_count(raw: str, default: int) -> int | None:
    value = raw.strip()
    if value == "":
        return default
    if not value.isdigit() or len(value) > 6:
        return None
    return int(value)


def hospitals_import_csv(*, data: bytes, dry_run: bool = False) -> ImportReport:
    """Validate every row of a hospital CSV, then import all rows or none.

    Columns: name (Korean), name_en, address, latitude, longitude, phone, is_partner,
    accepts_referrals, weekly_capacity, open_slots, typical_wait_days, specialties (codes
    separated by ``;`` or ``|``). Errors are reported per row; if there is any, nothing is written.
    The import runs in one transaction, so a concurrent import of the same hospital fails on
    hospital_unique_name_address and rolls the whole file back rather than half of it."""
    import csv
    import io

    from referrals.models import Specialty

    report = ImportReport()
    report.dry_run = dry_run
    if len(data) > IMPORT_MAX_BYTES:
        report.error(0, "file", _("The file is larger than 5 MB."))
        return report
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        report.error(0, "file", _("The file is not UTF-8 text."))
        return report
    if "\x00" in text:
        report.error(0, "file", _("The file contains NUL bytes; is it really a CSV file?"))
        return report
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in IMPORT_REQUIRED if c not in header]
    if missing:
        report.error(
            1, ",".join(missing), _("Missing column(s): %(cols)s") % {"cols": ", ".join(missing)}
        )
        return report
    unknown_cols = [c for c in header if c not in IMPORT_COLUMNS]
    if unknown_cols:
        report.error(
            1,
            ",".join(unknown_cols),
            _("Unknown column(s): %(cols)s") % {"cols": ", ".join(unknown_cols)},
        )
        return report
    specialties = {s.code: s for s in Specialty.objects.all()}
    existing = {(n.lower(), a.lower()) for n, a in Hospital.objects.values_list("name", "address")}
    seen: dict[tuple[str, str], int] = {}
    try:
        for line, raw in enumerate(reader, start=2):
            if line - 1 > IMPORT_MAX_ROWS:
                report.error(
                    line, "file", _("At most %(n)d rows per file.") % {"n": IMPORT_MAX_ROWS}
                )
                break
            if None in raw:  # more cells than columns
                report.error(line, "row", _("This row has more cells than the header."))
                continue
            row = {k: (v or "").strip() for k, v in raw.items()}
            errors_before = len(report.errors)
            name = row.get("name", "")
            if not name:
                report.error(line, "name", _("This field is required."))
            elif len(name) > 200:
                report.error(line, "name", _("At most 200 characters."))
            for column, limit in (("name_en", 200), ("address", 300), ("phone", 32)):
                if len(row.get(column, "")) > limit:
                    report.error(line, column, _("At most %(n)d characters.") % {"n": limit})
            lat = lon = None
            try:
                lat, lon = ranking.validate_coordinates(row.get("latitude"), row.get("longitude"))
            except InvalidInput as exc:
                report.error(line, exc.field or "latitude", exc.message)
            flags = {}
            for column, default in (("is_partner", True), ("accepts_referrals", True)):
                flags[column] = _parse_bool(row.get(column, ""), default)
                if flags[column] is None:
                    report.error(line, column, _("Use true or false."))
            counts = {}
            for column, fallback in (
                ("weekly_capacity", 0),
                ("open_slots", 0),
                ("typical_wait_days", 14),
            ):
                counts[column] = _parse_count(row.get(column, ""), fallback)
                if counts[column] is None:
                    report.error(line, column, _("Use a whole number from 0 to 999999."))
            codes = [
                c.strip()
                for c in row.get("specialties", "").replace("|", ";").split(";")
                if c.strip()
            ]
            unknown = [c for c in codes if c not in specialties]
            if unknown:
                report.error(
                    line,
                    "specialties",
                    _("Unknown specialty: %(codes)s") % {"codes": ", ".join(unknown)},
                )
            key = (name.lower(), row.get("address", "").lower())
            if name and key in seen:
                report.error(
                    line, "name", _("Duplicate of row %(row)d in this file.") % {"row": seen[key]}
                )
            elif name and key in existing:
                report.error(
                    line, "name", _("This hospital (same name and address) is already registered.")
                )
            seen.setdefault(key, line)
            if len(report.errors) == errors_before:
                report.rows.append(
                    {
                        "name": name,
                        "name_en": row.get("name_en", ""),
                        "address": row.get("address", ""),
                        "latitude": lat,
                        "longitude": lon,
                        "phone": row.get("phone", ""),
                        **flags,
                        **counts,
                        "specialties": list(dict.fromkeys(codes)),
                    }
                )
    except csv.Error as exc:
        report.error(reader.line_num, "file", _("The CSV is malformed: %(error)s") % {"error": exc})
    if not report.rows and not report.errors:
        report.error(2, "file", _("The file has no data rows."))
    if report.errors or dry_run:
        return report
    try:
        with transaction.atomic():
            for row in report.rows:
                codes = row.pop("specialties")
                hospital = Hospital.objects.create(**row)
                hospital.specialties.set([specialties[c] for c in codes])
                row["specialties"] = codes
    except IntegrityError:
        report.error(
            0,
            "file",
            _("Another import registered some of these hospitals meanwhile; nothing was imported."),
        )
        return report
    report.created = len(report.rows)
    return report
