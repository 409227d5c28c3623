"""Turns DashboardData into what the page and the CSV show: translated labels, chart geometry and
rows. Labels are resolved here, in the reader's active language, for both outputs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import dateformat, formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dashboard import charts
from dashboard.selectors import DashboardData
from screening.models import CLASS_NAMES, Triage

FUNNEL_LABELS = {
    "proposed": gettext_lazy("Proposed"),
    "sent": gettext_lazy("Sent to a hospital"),
    "accepted": gettext_lazy("Accepted"),
    "attended": gettext_lazy("Attended"),
    "completed": gettext_lazy("Completed"),
}
# Short triage names for the chart (the Triage labels are long sentences for the result page).
TRIAGE_LABELS: dict[str, object] = {
    Triage.NORMAL: gettext_lazy("Normal"),
    Triage.MEDICATION: gettext_lazy("Non-referable (medication)"),
    Triage.REFERABLE: gettext_lazy("Referable"),
    Triage.URGENT: gettext_lazy("Urgent"),
    Triage.UNGRADABLE: gettext_lazy("Ungradable"),
}


# What a figure without data shows (a rate of nothing, a wait with no accepted referral).
NO_DATA = "–"


def percent(share: float | None) -> str:
    if share is None:
        return NO_DATA
    # Rounded first: number_format truncates (2/7 would read 28.5%).
    return formats.number_format(round(share * 100, 1), decimal_pos=1, use_l10n=True) + "%"


def _one_decimal(value: float) -> str:
    # + 0.0 turns the -0.0 of a rounded tiny negative into 0.0 (it would read "-0.0").
    return formats.number_format(round(value, 1) + 0.0, decimal_pos=1, use_l10n=True)


def duration_text(value: dt.timedelta | None) -> str:
    """A wait with its unit: hours up to two days, then days. A wait of 0 is a value ("0.0
    hours"); only None, no wait at all, is NO_DATA."""
    if value is None:
        return NO_DATA
    hours = value.total_seconds() / 3600
    if hours >= 48:
        return _("%(n)s days") % {"n": _one_decimal(hours / 24)}
    return _("%(n)s hours") % {"n": _one_decimal(hours)}


def wait_texts(referrals: dict[str, Any]) -> tuple[str, str]:
    """The median and the mean time to acceptance, as shown side by side: both NO_DATA when there
    is no accepted referral, otherwise both values with their unit, never one of each."""
    median, mean = referrals["median_to_accept"], referrals["mean_to_accept"]
    if median is None or mean is None:
        return NO_DATA, NO_DATA
    return duration_text(median), duration_text(mean)


def _day_labels(days: list[dt.date]) -> list[str]:
    # The locale's short date format, looked up once for the up to 731 labels of a range.
    fmt = formats.get_format("SHORT_DATE_FORMAT", use_l10n=True)
    return [dateformat.format(day, fmt) for day in days]


def page_context(data: DashboardData) -> dict[str, Any]:
    share_head = [_("Count"), _("Out of"), _("Share")]
    days = list(
        zip(_day_labels([d for d, _n in data.per_day]), [n for _d, n in data.per_day], strict=True)
    )
    weeks = list(
        zip(
            _day_labels([d for d, _n in data.per_week]), [n for _d, n in data.per_week], strict=True
        )
    )
    triage = [(str(TRIAGE_LABELS.get(r.key, r.key)), r) for r in data.triage]
    positive = [(f"{r.key} · {CLASS_NAMES[r.key]}", r) for r in data.positive]
    context: dict[str, Any] = {
        "data": data,
        "gradable_text": percent(data.gradable_rate),
        "day_chart": charts.render_column_chart(
            days,
            chart_id="chart-day",
            title=_("Screenings per day"),
            desc=_("Number of screenings created on each day of the range."),
            column_label=_("Day"),
            value_label=_("Screenings"),
            max_labels=10,
        ),
        "week_chart": charts.render_column_chart(
            weeks,
            chart_id="chart-week",
            title=_("Screenings per week"),
            desc=_(
                "Number of screenings per week; weeks start on Monday and the first and last may be partial."
            ),
            column_label=_("Week of"),
            value_label=_("Screenings"),
            max_labels=10,
        ),
        "triage_chart": charts.render_bar_list(
            [(label, r.rate, f"{r.count} · {percent(r.rate)}") for label, r in triage],
            chart_id="chart-triage",
            title=_("Triage distribution"),
            desc=_("Share of triaged screenings in each triage outcome."),
            column_label=_("Triage"),
            table_head=share_head,
            table_rows=[[label, r.count, r.total, percent(r.rate)] for label, r in triage],
        ),
        "positive_chart": charts.render_bar_list(
            [(label, r.rate, f"{r.count} · {percent(r.rate)}") for label, r in positive],
            chart_id="chart-positive",
            title=_("Positive rate per class"),
            desc=_("Share of eye results whose findings include each class."),
            column_label=_("Class"),
            table_head=share_head,
            table_rows=[[label, r.count, r.total, percent(r.rate)] for label, r in positive],
        ),
    }
    referrals = data.referrals
    steps = [(str(FUNNEL_LABELS[r.key]), r) for r in referrals["steps"]]
    median_text, mean_text = wait_texts(referrals)
    context.update(
        funnel_chart=charts.render_funnel(
            [(label, r.count) for label, r in steps],
            chart_id="funnel",
            title=_("Referral funnel"),
            desc=_(
                "Referrals of the screenings in the range, by the furthest step each reached: "
                "proposed, sent to a hospital, accepted, attended, completed."
            ),
            table_head=[_("Step"), _("Referrals"), _("Share of all referrals")],
            table_rows=[[label, r.count, percent(r.rate)] for label, r in steps],
        ),
        median_text=median_text,
        mean_text=mean_text,
    )
    return context


def _hours(value: dt.timedelta | None) -> str:
    return "" if value is None else f"{value.total_seconds() / 3600:.2f}"


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def csv_rows(data: DashboardData) -> list[list[Any]]:
    """section, key, label, value, denominator, rate: one aggregate per row, machine-readable keys
    and numbers (dot decimals, hours) with a translated label for people."""
    f = data.filters
    rows: list[list[Any]] = [["section", "key", "label", "value", "denominator", "rate"]]
    rows += [
        ["filter", "date_from", _("Start date"), f.date_from.isoformat(), "", ""],
        ["filter", "date_to", _("End date"), f.date_to.isoformat(), "", ""],
        ["filter", "region", _("Region"), f.region or "*", "", ""],
        ["filter", "site", _("Site"), f"{f.site.pk} {f.site.name}" if f.site else "*", "", ""],
        ["summary", "screenings", _("Screenings"), data.screenings_total, "", ""],
        [
            "summary",
            "gradable_images",
            _("Gradable images"),
            data.images_gradable,
            data.images_total,
            _share(data.gradable_rate),
        ],
    ]
    rows += [["screenings_per_day", d.isoformat(), "", n, "", ""] for d, n in data.per_day]
    rows += [["screenings_per_week", d.isoformat(), "", n, "", ""] for d, n in data.per_week]
    rows += [
        ["triage", r.key, str(TRIAGE_LABELS.get(r.key, r.key)), r.count, r.total, _share(r.rate)]
        for r in data.triage
    ]
    rows.append(["triage", "pending", _("Not triaged yet"), data.untriaged, "", ""])
    rows += [
        ["positive_rate", r.key, str(CLASS_NAMES[r.key]), r.count, r.total, _share(r.rate)]
        for r in data.positive
    ]
    ref = data.referrals
    rows += [
        ["referral_funnel", r.key, str(FUNNEL_LABELS[r.key]), r.count, r.total, _share(r.rate)]
        for r in ref["steps"]
    ]
    rows += [
        [
            "referral_other",
            "declined",
            _("Declined at least once"),
            ref["declined"],
            ref["total"],
            "",
        ],
        ["referral_other", "no_show", _("Did not attend"), ref["no_show"], ref["total"], ""],
        ["referral_other", "cancelled", _("Cancelled"), ref["cancelled"], ref["total"], ""],
        ["referral_other", "open", _("Still open"), ref["open"], ref["total"], ""],
        [
            "time_to_acceptance",
            "median_hours",
            _("Median time to acceptance (hours)"),
            _hours(ref["median_to_accept"]),
            "",
            "",
        ],
        [
            "time_to_acceptance",
            "mean_hours",
            _("Mean time to acceptance (hours)"),
            _hours(ref["mean_to_accept"]),
            "",
            "",
        ],
    ]
    ph = data.pharmacy
    rows.append(
        ["kiosk_stock", "total", _("Boxes in stock (unexpired)"), ph["stock_boxes"], "", ""]
    )
    rows += [["dispenses", status, "", n, "", ""] for status, n in ph["dispenses"].items()]
    for kiosk in ph["kiosks"]:
        label = f"{kiosk.name} ({kiosk.pharmacy.name})"
        rows.append(["kiosk_stock", kiosk.kiosk_id, label, kiosk.stock, "", ""])
        rows.append(["kiosk_dispensed", kiosk.kiosk_id, label, kiosk.dispensed, "", ""])
        rows.append(["kiosk_failed", kiosk.kiosk_id, label, kiosk.failed, "", ""])
    return rows


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (a site named "=HYPERLINK(...)") is
    prefixed with a quote; numbers pass through."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
