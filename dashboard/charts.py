"""Server-side SVG charts (no chart library, no JavaScript, no CDN).

Geometry is computed here from already-aggregated numbers (a few hundred points at most); the
templates in dashboard/templates/dashboard/charts/ draw it as an accessible figure: ``role="img"``
with ``<title>``/``<desc>``, a ``<title>`` per bar as a tooltip, and the same numbers as a table in
a ``<details>`` for screen readers and keyboard users. The templates escape every text.

Each chart is drawn twice: wide (720 units, scaled to a desktop card) and narrow (360 units, about
a phone's card in CSS pixels, so that its 12-unit text reads at about 12 px); dashboard.css shows
one of the two. A viewBox scales text with the drawing, so one drawing cannot serve both: the
wide one shrunk to a phone draws 6 px text, and kept wide it needs a sideways scroll that hides
today's bar.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, replace
from typing import Any

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

WIDE = 720
NARROW = 360
NARROW_HEIGHT = 200
FONT = 12  # .tick, .label and .value in dashboard.css, in SVG units
FUNNEL_FONT = 13  # .funnel-label
LABEL_GAP = 6


def text_width(text: str, font_size: float = FONT) -> float:
    """A generous estimate of the drawn width of ``text`` (the server has no font metrics): 1 em
    for Hangul and other wide characters, 0.62 em for the rest (digits are about 0.6 em)."""
    return sum(font_size * (1.0 if unicodedata.east_asian_width(c) in "WF" else 0.62) for c in text)


def fit_text(text: str, room: float, font_size: float = FONT) -> str:
    """``text``, or as much of its start as fits ``room`` followed by an ellipsis."""
    if text_width(text, font_size) <= room:
        return text
    while text and text_width(text + "…", font_size) > room:
        text = text[:-1]
    return text.rstrip() + "…"


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int | float
    show_label: bool = True
    text: str = ""
    # Where the label is drawn (text-anchor: start, middle or end) and what it reads when the
    # full label does not fit (the tooltip and the table keep the full label).
    label_x: float = 0
    label_y: float = 0
    anchor: str = "start"
    caption: str = ""

    @property
    def cx(self) -> float:
        return round(self.x + self.width / 2, 2)

    @property
    def cy(self) -> float:
        return round(self.y + self.height / 2, 2)

    @property
    def right(self) -> float:
        return round(self.x + self.width, 2)

    @property
    def text_x(self) -> float:
        """Where the text after a horizontal bar starts."""
        return round(self.x + self.width + 6, 2)

    @property
    def shown(self) -> str:
        return self.caption or self.label


def _nice_max(value: float) -> float:
    """The next "round" number at or above value (1, 2, 2.5, 5 x 10^n), for the axis."""
    if value <= 0:
        return 1
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value:
            return candidate
    return 10 ** (exponent + 1)  # pragma: no cover - the loop always returns


def _place_labels(bars: list[Bar], every: int, width: int, *, from_end: bool) -> list[Bar]:
    """Label every ``every``-th bar: counted from the first bar, at its left edge (wide), or from
    the last one, today's, centred under it (``from_end``). A label that would stick out of the
    chart is moved inside, anchored to the edge; where a label then overlaps a moved one, the
    next bar is tried instead. The others keep the spacing ``every`` gives them."""
    placed = list(bars)
    step = -1 if from_end else 1
    order = range(len(bars) - 1, -1, -1) if from_end else range(len(bars))
    due = order[0] if bars else 0  # the next bar to label
    previous: tuple[float, float, bool] | None = None  # start, end, moved: the last one placed
    for i in order:
        if (i - due) * step < 0:
            continue
        bar, w = bars[i], text_width(bars[i].label)
        x, anchor = (bar.cx, "middle") if from_end else (bar.x, "start")
        start = x - w / 2 if from_end else x
        moved = True
        if start + w > width:
            start, x, anchor = width - w, width, "end"
        elif start < 0:
            start, x, anchor = 0, 0, "start"
        else:
            moved = False
        if previous is not None and (moved or previous[2]):
            if from_end:
                overlaps = start + w + LABEL_GAP > previous[0]
            else:
                overlaps = start < previous[1] + LABEL_GAP
            if overlaps:
                due = i + step
                continue
        previous = (start, start + w, moved)
        placed[i] = replace(bar, show_label=True, label_x=round(x, 2), anchor=anchor)
        due = i + step * every
    return placed


@dataclass(frozen=True)
class ColumnChart:
    width: int
    height: int
    plot_left: int
    plot_bottom: int
    plot_top: int
    bars: list[Bar]
    ticks: list[tuple[float, int]]  # (y, value)


def column_chart(
    points: list[tuple[str, int]],
    *,
    width: int = WIDE,
    height: int = 220,
    max_labels: int = 12,
    narrow: bool = False,
) -> ColumnChart:
    """Vertical bars, one per point (per day or per week), with at most ``max_labels`` x labels.

    ``narrow``: the y axis only as wide as its numbers, and the x labels as many as fit side by
    side, counted from the last bar so that today's is labelled."""
    top_value = _nice_max(max((v for _, v in points), default=0))
    left = 44
    if narrow:
        left = max(24, math.ceil(text_width(str(round(top_value)))) + 8)
    right, top, bottom = 8, 10, height - 28
    plot_w, plot_h = width - left - right, bottom - top
    slot = plot_w / max(len(points), 1)
    gap = min(2.0, slot * 0.2)
    every = max(1, math.ceil(len(points) / max_labels))
    if narrow:
        widest = max((text_width(label) for label, _ in points), default=0)
        every = max(every, math.ceil((widest + LABEL_GAP) / slot))
    bars = []
    for i, (label, value) in enumerate(points):
        h = plot_h * value / top_value
        bars.append(
            Bar(
                x=round(left + i * slot + gap / 2, 2),
                y=round(bottom - h, 2),
                width=round(max(slot - gap, 0.5), 2),
                height=round(h, 2),
                label=label,
                value=value,
                show_label=False,
            )
        )
    bars = _place_labels(bars, every, width, from_end=narrow)
    ticks = [(round(bottom - plot_h * f, 2), round(top_value * f)) for f in (0, 0.5, 1)]
    return ColumnChart(width, height, left, bottom, top, bars, ticks)


@dataclass(frozen=True)
class BarList:
    width: int
    height: int
    label_width: int
    bars: list[Bar]


def bar_list(
    rows: list[tuple[str, float | None, str]],
    *,
    width: int = WIDE,
    row_h: int = 26,
    label_width: int = 260,
    narrow: bool = False,
) -> BarList:
    """Horizontal bars for shares in [0, 1]: (label, share or None, text shown after the bar).

    Wide: the label left of its bar. ``narrow``: the label on its own line above its bar, and
    shortened with an ellipsis if even the whole width is too little."""
    if narrow:
        row_h, label_width = 42, 0
        plot_w = width - max((text_width(text) for _, _, text in rows), default=0) - 12
    else:
        plot_w = width - label_width - 90
    bars = []
    for i, (label, share, text) in enumerate(rows):
        w = plot_w * max(0.0, min(1.0, share or 0.0))
        y = i * row_h + (20 if narrow else 4)
        height = 16 if narrow else row_h - 8
        bars.append(
            Bar(
                x=label_width,
                y=y,
                width=round(w, 2),
                height=height,
                label=label,
                value=share or 0.0,
                text=text,
                label_x=0 if narrow else label_width - 6,
                label_y=i * row_h + 9 if narrow else round(y + height / 2, 2),
                anchor="start" if narrow else "end",
                caption=fit_text(label, width) if narrow else "",
            )
        )
    return BarList(width, max(row_h * len(rows), row_h), label_width, bars)


def funnel(
    rows: list[tuple[str, int]], *, width: int = WIDE, row_h: int = 40, narrow: bool = False
) -> BarList:
    """Centred bars whose width is each step's count relative to the first step, each with
    "step: count" across it (shortened if the chart is too narrow for it)."""
    if narrow:
        row_h = 34
    first = max((rows[0][1] if rows else 0), 1)
    plot_w = width - 20
    bars = []
    for i, (label, value) in enumerate(rows):
        w = max(plot_w * value / first, 2 if value else 0)
        bars.append(
            Bar(
                x=round((width - w) / 2, 2),
                y=i * row_h + 2,
                width=round(w, 2),
                height=row_h - 4,
                label=label,
                value=value,
                caption=fit_text(f"{label}: {value}", width - 8, FUNNEL_FONT),
            )
        )
    return BarList(width, max(row_h * len(rows), row_h), 0, bars)


def _figure(
    svg: str,
    views: list[dict[str, Any]],
    *,
    chart_id: str,
    title: str,
    desc: str,
    table_head: list[str],
    table_rows: list[list[object]],
) -> SafeString:
    """The figure around ``dashboard/charts/<svg>.svg``: the wide and the narrow drawing, each
    with the title and description, and the same numbers as a table (first cell of a row: its
    header). ``views``: the wide then the narrow drawing's width, height and the named values
    that chart's template draws (as ``g``)."""
    for view, (css, suffix) in zip(
        views, [("chart-wide", ""), ("chart-narrow", "-narrow")], strict=True
    ):
        view.update(css=css, suffix=suffix)
    return render_to_string(
        "dashboard/charts/figure.html",
        {
            "svg": f"dashboard/charts/{svg}.svg",
            "views": views,
            "chart_id": chart_id,
            "title": title,
            "desc": desc,
            "table_head": table_head,
            "table_rows": [(row[0], row[1:]) for row in table_rows],
        },
    )


def _column_view(chart: ColumnChart) -> dict[str, Any]:
    return {
        "width": chart.width,
        "height": chart.height,
        "ticks": chart.ticks,
        "bars": chart.bars,
        "plot_left": chart.plot_left,
        "tick_x": chart.plot_left - 4,
        "label_y": chart.plot_bottom + 16,
    }


def render_column_chart(
    points: list[tuple[str, int]],
    *,
    chart_id: str,
    title: str,
    desc: str,
    column_label: str,
    value_label: str,
    max_labels: int = 12,
) -> SafeString:
    wide = column_chart(points, max_labels=max_labels)
    narrow = column_chart(points, width=NARROW, height=NARROW_HEIGHT, narrow=True)
    return _figure(
        "column",
        [_column_view(wide), _column_view(narrow)],
        chart_id=chart_id,
        title=title,
        desc=desc,
        table_head=[column_label, value_label],
        table_rows=[[bar.label, bar.value] for bar in wide.bars],
    )


def _bars_view(chart: BarList) -> dict[str, Any]:
    return {"width": chart.width, "height": chart.height, "bars": chart.bars}


def render_bar_list(
    rows: list[tuple[str, float | None, str]],
    *,
    chart_id: str,
    title: str,
    desc: str,
    column_label: str,
    table_head: list[str],
    table_rows: list[list[object]],
) -> SafeString:
    return _figure(
        "bars",
        [_bars_view(bar_list(rows)), _bars_view(bar_list(rows, width=NARROW, narrow=True))],
        chart_id=chart_id,
        title=title,
        desc=desc,
        table_head=[column_label, *table_head],
        table_rows=table_rows,
    )


def render_funnel(
    rows: list[tuple[str, int]],
    *,
    chart_id: str,
    title: str,
    desc: str,
    table_head: list[str],
    table_rows: list[list[object]],
) -> SafeString:
    views = [_bars_view(funnel(rows)), _bars_view(funnel(rows, width=NARROW, narrow=True))]
    for view in views:
        view["centre_x"] = view["width"] / 2
    return _figure(
        "funnel",
        views,
        chart_id=chart_id,
        title=title,
        desc=desc,
        table_head=table_head,
        table_rows=table_rows,
    )
