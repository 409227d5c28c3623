"""Reads of the accounts app: the audit trail for export and verification."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import QuerySet

from accounts.models import AuditEvent


def audit_events_between(
    *, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> QuerySet[AuditEvent]:
    """Events from ``since`` (inclusive) to ``until`` (exclusive), in chain order."""
    events = AuditEvent.objects.order_by("id")
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    return events


def audit_events_with_ids(*, ids: Iterable[int]) -> QuerySet[AuditEvent]:
    """These events, in chain order."""
    return AuditEvent.objects.filter(id__in=ids).order_by("id")


def audit_chain_last_event() -> tuple[int, str] | None:
    """(id, hash) of the newest event, or None on an empty trail."""
    return AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
