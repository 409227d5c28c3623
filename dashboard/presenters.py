"""Turns DashboardData into what the page and the CSV show: translated labels, chart geometry and
rows. Labels are resolved here, in the reader's active language, for both outputs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import formats
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
TRIAGE_LABELS = {
    Triage.NORMAL: gettext_lazy("Normal"),
    Triage.MEDICATION: gettext_lazy("Non-referable (medication)"),
    Triage.REFERABLE: gettext_lazy("Referable"),
    Triage.URGENT: gettext_lazy("Urgent"),
    Triage.UNGRADABLE: gettext_lazy("Ungradable"),
}


def percent(share: float | None) -> str:
    if share is None:
        return "–"
    return formats.number_format(share * 100, decimal_pos=1, use_l10n=True) + "%"


def duration_text(value: dt.timedelta | None) -> str:
    if value is None:
        return "–"
    hours = value.total_seconds() / 3600
    if hours >= 48:
        return _("%(n)s days") % {"n": formats.number_format(hours / 24, decimal_pos=1, use_l10n=True)}
    return _("%(n)s hours") % {"n": formats.number_format(hours, decimal_pos=1, use_l10n=True)}


def _day_label(day: dt.date) -> str:
    return formats.date_format(day, "SHORT_DATE_FORMAT", use_l10n=True)


def page_context(data: DashboardData) -> dict[str, Any]:
    triage_rows = [
        (str(TRIAGE_LABELS.get(row.key, row.key)), row.rate, f"{row.count} · {percent(row.rate)}", row,
         percent(row.rate))
        for row in data.triage
    ]
    positive_rows = [
        (f"{row.key} · {CLASS_NAMES[row.key]}", row.rate, f"{row.count} · {percent(row.rate)}", row,
         percent(row.rate))
        for row in data.positive
    ]
    context: dict[str, Any] = {
        "data": data,
        "gradable_text": percent(data.gradable_rate),
        "day_chart": charts.column_chart([(_day_label(d), n) for d, n in data.per_day]),
        "week_chart": charts.column_chart([(_day_label(d), n) for d, n in data.per_week]),
        "triage_chart": charts.bar_list([r[:3] for r in triage_rows]),
        "triage_rows": triage_rows,
        "positive_chart": charts.bar_list([r[:3] for r in positive_rows]),
        "positive_rows": positive_rows,
    }
    referrals = data.referrals
    if referrals is not None:
        steps = [(str(FUNNEL_LABELS[row.key]), row.count, row) for row in referrals["steps"]]
        context.update(
            funnel_chart=charts.funnel([(label, n) for label, n, _row in steps]),
            funnel_rows=[(label, row.count, percent(row.rate)) for label, _n, row in steps],
            median_text=duration_text(referrals["median_to_accept"]),
            mean_text=duration_text(referrals["mean_to_accept"]),
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
        ["summary", "gradable_images", _("Gradable images"), data.images_gradable,
         data.images_total, _share(data.gradable_rate)],
    ]
    rows += [["screenings_per_day", d.isoformat(), "", n, "", ""] for d, n in data.per_day]
    rows += [["screenings_per_week", d.isoformat(), "", n, "", ""] for d, n in data.per_week]
    rows += [["triage", r.key, str(TRIAGE_LABELS.get(r.key, r.key)), r.count, r.total, _share(r.rate)]
             for r in data.triage]
    rows.append(["triage", "pending", _("Not triaged yet"), data.untriaged, "", ""])
    rows += [["positive_rate", r.key, str(CLASS_NAMES[r.key]), r.count, r.total, _share(r.rate)]
             for r in data.positive]
    if data.referrals is not None:
        ref = data.referrals
        rows += [["referral_funnel", r.key, str(FUNNEL_LABELS[r.key]), r.count, r.total, _share(r.rate)]
                 for r in ref["steps"]]
        rows += [
            ["referral_other", "declined", _("Declined at least once"), ref["declined"], ref["total"], ""],
            ["referral_other", "no_show", _("Did not attend"), ref["no_show"], ref["total"], ""],
            ["referral_other", "cancelled", _("Cancelled"), ref["cancelled"], ref["total"], ""],
            ["referral_other", "open", _("Still open"), ref["open"], ref["total"], ""],
            ["time_to_acceptance", "median_hours", _("Median time to acceptance (hours)"),
             _hours(ref["median_to_accept"]), "", ""],
            ["time_to_acceptance", "mean_hours", _("Mean time to acceptance (hours)"),
             _hours(ref["mean_to_accept"]), "", ""],
        ]
    if data.pharmacy is not None:
        ph = data.pharmacy
        rows.append(["kiosk_stock", "total", _("Boxes in stock (unexpired)"), ph["stock_boxes"], "", ""])
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
