"""CSV export of audit events (admin action and ``manage.py export_audit``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from accounts.audit import HASHED_FIELDS

COLUMNS = ("id", *HASHED_FIELDS, "prev_hash", "hash")


def _cell(value) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if value is None:
        return ""
    text = str(value)
    # A cell starting with = + - @ is a formula to a spreadsheet (CSV injection): the user agent
    # and paths are client-controlled.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_rows(queryset: Iterable) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    yield buffer.getvalue()
    for event in queryset.iterator(chunk_size=2000) if hasattr(queryset, "iterator") else queryset:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(getattr(event, c)) for c in COLUMNS])
        yield buffer.getvalue()
