"""What the field-performance page shows: each estimate as text (value, 95% interval, counts) in
the reader's language, and the labels of sites, classes, models and months."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import formats
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from dashboard.field_performance import (
    ClassStats,
    FieldPerformance,
    Proportion,
    ReferStats,
    SiteAgreement,
)
from dashboard.models import SiteAgreementAlert
from dashboard.presenters import NO_DATA, percent
from screening.models import CLASS_NAMES, Site


@dataclass(frozen=True)
class EstimateText:
    value: str
    interval: str
    counts: str
    weighted: bool


def estimate_text(p: Proportion) -> EstimateText:
    """ "92.3%", "85.1%–96.2%" (the Wilson 95% interval), "48 of 52"; NO_DATA when nothing was
    counted."""
    if p.value is None or p.interval is None:
        return EstimateText(NO_DATA, "", _("none graded"), False)
    low, high = p.interval
    interval = f"{percent(low)}–{percent(high)}"
    counts = _("%(k)s of %(n)s") % {
        "k": formats.number_format(p.k, use_l10n=True, force_grouping=True),
        "n": formats.number_format(p.n, use_l10n=True, force_grouping=True),
    }
    return EstimateText(percent(p.value), interval, counts, p.weighted)


def site_label(site: Site) -> str:
    if get_language() == "en" and site.name_en:
        return site.name_en
    return site.name


def _refer_row(stats: ReferStats, label: str) -> dict[str, Any]:
    return {
        "key": stats.key,
        "label": label,
        "graded": stats.graded,
        "sensitivity": estimate_text(stats.sensitivity),
        "specificity": estimate_text(stats.specificity),
        "agreement": estimate_text(stats.agreement),
    }


def _class_row(stats: ClassStats) -> dict[str, Any]:
    return {
        "key": stats.key,
        "label": f"{stats.key} · {CLASS_NAMES[stats.key]}",
        "eyes": stats.eyes,
        "sensitivity": estimate_text(stats.sensitivity),
        "specificity": estimate_text(stats.specificity),
    }


def _month_label(key: str) -> str:
    try:
        month = dt.date.fromisoformat(f"{key}-01")
    except ValueError:
        return key
    return formats.date_format(month, "YEAR_MONTH_FORMAT", use_l10n=True)


def alert_rows(
    *, below: list[SiteAgreement], sites: dict[int, Site], open_alerts: list[SiteAgreementAlert]
) -> list[dict[str, Any]]:
    """The sites whose latest graded screenings agree too rarely with the AI, with the date the
    beat first raised the alert (none yet if it has not run since)."""
    since = {a.site_id: a.raised_at for a in open_alerts}
    rows = []
    for a in below:
        site = sites.get(a.site_id)
        if site is None:
            continue
        rows.append(
            {
                "site": site_label(site),
                "agreement": percent(a.agreement),
                "agreed": a.agreed,
                "graded": a.graded,
                "since": since.get(a.site_id),
            }
        )
    return rows


def page_context(
    data: FieldPerformance, *, sites: dict[int, Site], alerts: list[dict[str, Any]]
) -> dict[str, Any]:
    unknown = _("not recorded")
    overall = _refer_row(data.overall, _("All graded screenings"))
    return {
        "overall": overall,
        "per_overall": [overall],
        "per_class": [_class_row(s) for s in data.per_class],
        "per_site": [
            _refer_row(s, site_label(sites[int(s.key)]) if int(s.key) in sites else s.key)
            for s in data.per_site
        ],
        "per_camera": [
            _refer_row(s, s.key.replace("x", " × ") or unknown) for s in data.per_camera
        ],
        "per_model": [_refer_row(s, s.key or unknown) for s in data.per_model],
        "per_month": [_refer_row(s, _month_label(s.key)) for s in data.per_month],
        "graded": data.overall.graded,
        "sampled": data.sampled,
        "alerts": alerts,
        "min_graded": settings.FIELD_AGREEMENT_MIN_GRADED,
        "threshold": percent(settings.FIELD_AGREEMENT_ALERT_BELOW),
    }
