"""The dashboard's writes: the daily roll-up of closed days (dashboard.models.DailySiteStats).

``rollup_days_refresh`` recounts whole days from the raw rows, per site, with the selection and
the counting rules of dashboard.selectors (same Q, same funnel steps, same findings letters), and
replaces what the roll-up held for those days. It is idempotent: running it twice, or two runs at
once, leaves the same rows (the days' RollupDay rows are upserted first and stay locked until the
commit, so a second run for the same day waits and then recounts from what the first committed).

``rollup_recent_refresh`` (the beat task) picks the days to recount: yesterday and today, days
of the last weeks missing from the roll-up, and the days of screenings whose figures changed
since the last run (submitted, triaged, new images or results, a referral created or moved).
A change that leaves no timestamp (an admin edit of a triage, a deletion) waits for
``manage.py dashboard_rollup --from ... --to ...``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Aggregate, Count, F, Max, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from dashboard import selectors
from dashboard.models import (
    POSITIVE_FIELDS,
    REFERRAL_FIELDS,
    TRIAGE_FIELDS,
    DailySiteStats,
    RollupDay,
)
from referrals.models import Referral, ReferralEvent
from screening.models import EyeResult, Screening, ScreeningImage

logger = logging.getLogger(__name__)

# Days recounted in one transaction: a month of a busy year is a few thousand grouped rows.
BATCH_DAYS = 31
# A row stamped before the last run's start may commit after that run read the tables (a long
# transaction): look this far further back for changed screenings.
CHANGE_MARGIN = dt.timedelta(minutes=15)
# Days without a roll-up row within this many days back are filled by the beat (a worker that
# was down over a weekend); older gaps are read from the raw rows until rebuilt.
GAP_DAYS = 35

_Key = tuple[int, dt.date]  # (site id, local day)


def _local_day(path: str) -> TruncDate:
    return TruncDate(path, tzinfo=timezone.get_current_timezone())


def _add(row: DailySiteStats, name: str, n: int) -> None:
    setattr(row, name, getattr(row, name) + n)


def _per_site_day(
    model: type[Screening | ScreeningImage | EyeResult],
    sel: selectors.Selection,
    *columns: str,
    **counts: Aggregate,
) -> QuerySet:
    """``model``'s rows of the selection (Screening, or a model pointing to it), counted per
    (site, local day of the screening, *columns): ``(site_id, day, *columns, *counts)`` rows."""
    via = "" if model is Screening else "screening__"
    return (
        model.objects.filter(sel.q(via))
        .order_by()
        .annotate(day=_local_day(f"{via}created_at"))
        .values_list(f"{via}site_id", "day", *columns)
        .annotate(**counts)
    )


def _count_days(days: list[dt.date]) -> dict[_Key, DailySiteStats]:
    """Every figure of ``days`` per (site, day), counted from the raw rows (4 queries)."""
    sel = selectors.Selection(selectors.day_spans(days), None)
    stats: dict[_Key, DailySiteStats] = {}

    def row(site_id: int, day: dt.date | dt.datetime) -> DailySiteStats:
        day = selectors.as_date(day)
        key = (site_id, day)
        if key not in stats:
            stats[key] = DailySiteStats(day_id=day, site_id=site_id, waits=[])
        return stats[key]

    for site_id, day, triage, n in _per_site_day(Screening, sel, "triage", n=Count("id")):
        r = row(site_id, day)
        r.screenings += n
        if triage in TRIAGE_FIELDS:
            _add(r, TRIAGE_FIELDS[triage], n)

    images = _per_site_day(
        ScreeningImage, sel, total=Count("id"), gradable=Count("id", filter=Q(gradable=True))
    )
    for site_id, day, total, gradable in images:
        r = row(site_id, day)
        r.images, r.images_gradable = total, gradable

    for site_id, day, findings, n in _per_site_day(EyeResult, sel, "findings", n=Count("id")):
        r = row(site_id, day)
        r.results += n
        for letter in selectors.findings_letters(findings):
            if letter in POSITIVE_FIELDS:
                _add(r, POSITIVE_FIELDS[letter], n)

    if selectors.rollup_usable():
        referrals = selectors.referral_rows(
            sel, site=F("screening__site_id"), day=_local_day("screening__created_at")
        )
        for ref in referrals.values():
            r = row(ref["site"], ref["day"])
            for key, name in REFERRAL_FIELDS.items():
                _add(r, name, key == "total" or ref[f"r_{key}"] > 0)
            if ref["sent_t"] is not None and ref["accepted_t"] is not None:
                r.waits.append((ref["accepted_t"] - ref["sent_t"]).total_seconds())
    for r in stats.values():
        r.waits.sort()
    return stats


def rollup_days_refresh(*, days: Iterable[dt.date]) -> int:
    """Recount ``days`` (local dates) into the roll-up; returns how many days were written."""
    wanted = sorted(set(days))
    for i in range(0, len(wanted), BATCH_DAYS):
        batch = wanted[i : i + BATCH_DAYS]
        # Stamped before anything is read: a day counts as complete in the roll-up only if this
        # run began after the day ended (dashboard.selectors._rollup_read).
        started = timezone.now()
        with transaction.atomic():
            # Upserting the day rows first locks them until the commit: an overlapping run for
            # the same days waits here, then counts what this one committed (no double rows,
            # no rows left from an older count). Sorted, so two runs lock in the same order.
            RollupDay.objects.bulk_create(
                [RollupDay(day=day, computed_at=started) for day in batch],
                update_conflicts=True,
                unique_fields=["day"],
                update_fields=["computed_at"],
            )
            stats = _count_days(batch)
            DailySiteStats.objects.filter(day__in=batch).delete()
            DailySiteStats.objects.bulk_create(
                [stats[key] for key in sorted(stats, key=lambda k: (k[1], k[0]))],
                batch_size=1000,
            )
        logger.info(
            "dashboard roll-up: %d days from %s, %d site rows", len(batch), batch[0], len(stats)
        )
    return len(wanted)


def _changed_days(since: dt.datetime) -> set[dt.date]:
    """Local days of screenings whose figures may have changed since ``since`` (5 queries)."""
    days: set[dt.date] = set()

    def add(qs, path: str) -> None:
        days.update(
            selectors.as_date(d)
            for d in qs.order_by()
            .annotate(d=_local_day(path))
            .values_list("d", flat=True)
            .distinct()
        )

    # Submitted (queued_at), picked up or retried (started_at), finished (completed_at).
    add(
        Screening.objects.filter(
            Q(queued_at__gte=since) | Q(started_at__gte=since) | Q(completed_at__gte=since)
        ),
        "created_at",
    )
    add(ScreeningImage.objects.filter(created_at__gte=since), "screening__created_at")
    add(EyeResult.objects.filter(created_at__gte=since), "screening__created_at")
    add(Referral.objects.filter(updated_at__gte=since), "screening__created_at")
    add(ReferralEvent.objects.filter(created_at__gte=since), "referral__screening__created_at")
    return days


def rollup_recent_refresh(*, now: dt.datetime | None = None) -> list[dt.date]:
    """The beat's refresh: yesterday and today, recent gaps, and days changed since last run."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    days = {today - dt.timedelta(days=1), today}
    recent = set(
        RollupDay.objects.filter(
            day__gte=today - dt.timedelta(days=GAP_DAYS), day__lt=today
        ).values_list("day", flat=True)
    )
    days |= {today - dt.timedelta(days=k) for k in range(1, GAP_DAYS + 1)} - recent
    last_run = RollupDay.objects.aggregate(last=Max("computed_at"))["last"]
    if last_run is not None:
        days |= {day for day in _changed_days(last_run - CHANGE_MARGIN) if day <= today}
    rollup_days_refresh(days=days)
    return sorted(days)
