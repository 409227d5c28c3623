"""Celery tasks of the dashboard app: keeping the daily roll-up fresh (dashboard.services)."""

from __future__ import annotations

import datetime as dt
from typing import cast

from celery import shared_task


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def dashboard_rollup_refresh(date_from: str | None = None, date_to: str | None = None) -> None:
    """On the beat (settings.CELERY_BEAT_SCHEDULE["dashboard-rollup"]): recount yesterday, today,
    recent gaps and changed days. With ``date_from``/``date_to`` (ISO dates, JSON-safe): recount
    that range instead, e.g. after an import or a correction."""
    # Safe to redeliver or overlap: whole days are recounted from the raw rows and replaced
    # under a lock on their RollupDay rows, so a second run writes the same figures.
    from dashboard.services import rollup_days_refresh, rollup_recent_refresh

    if date_from is None and date_to is None:
        rollup_recent_refresh()
        return
    # At least one bound is given here; one alone is a single day.
    first = dt.date.fromisoformat(cast(str, date_from or date_to))
    last = dt.date.fromisoformat(cast(str, date_to or date_from))
    rollup_days_refresh(days=(first + dt.timedelta(days=k) for k in range((last - first).days + 1)))


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def field_agreement_alerts_check() -> dict[str, int]:
    """On the beat (settings.CELERY_BEAT_SCHEDULE["dashboard-field-agreement"]): raise or resolve
    the per-site agreement alerts of the field-performance page."""
    # Safe to redeliver or overlap: one open alert per site is a database constraint, and a
    # resolved alert is resolved again by nobody (the UPDATE only touches open rows).
    from dashboard.field_performance_services import field_agreement_alerts_evaluate

    return field_agreement_alerts_evaluate()
