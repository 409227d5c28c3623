"""Server-side SVG charts (no chart library, no JavaScript, no CDN).

Geometry is computed from already-aggregated numbers (a few hundred points at most), then drawn
as an accessible figure: ``role="img"`` with ``<title>``/``<desc>``, a ``<title>`` per bar as a
tooltip, and the same numbers as a table in a ``<details>`` for screen readers and keyboard users.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy


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

    @property
    def cx(self) -> float:
        return round(self.x + self.width / 2, 2)

    @property
    def cy(self) -> float:
        return round(self.y + self.height / 2, 2)

    @property
    def right(self) -> float:
        return round(self.x + self.width, 2)


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
    points: list[tuple[str, int]], *, width: int = 720, height: int = 220, max_labels: int = 12
) -> ColumnChart:
    """Vertical bars, one per point (per day or per week), with about ``max_labels`` x labels."""
    left, right, top, bottom = 44, 8, 10, height - 28
    plot_w, plot_h = width - left - right, bottom - top
    top_value = _nice_max(max((v for _, v in points), default=0))
    slot = plot_w / max(len(points), 1)
    gap = min(2.0, slot * 0.2)
    every = max(1, math.ceil(len(points) / max_labels))
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
                show_label=i % every == 0,
            )
        )
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
    width: int = 720,
    row_h: int = 26,
    label_width: int = 260,
) -> BarList:
    """Horizontal bars for shares in [0, 1]: (label, share or None, text shown after the bar)."""
    plot_w = width - label_width - 90
    bars = []
    for i, (label, share, text) in enumerate(rows):
        w = plot_w * max(0.0, min(1.0, share or 0.0))
        bars.append(
            Bar(
                x=label_width,
                y=i * row_h + 4,
                width=round(w, 2),
                height=row_h - 8,
                label=label,
                value=share or 0.0,
                text=text,
            )
        )
    return BarList(width, max(row_h * len(rows), row_h), label_width, bars)


def funnel(rows: list[tuple[str, int]], *, width: int = 720, row_h: int = 40) -> BarList:
    """Centred bars whose width is each step's count relative to the first step."""
    first = max((rows[0][1] if rows else 0), 1)
    label_width = 0
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
            )
        )
    return BarList(width, max(row_h * len(rows), row_h), label_width, bars)


# --- rendering ------------------------------------------------------------------------------
# Drawn in Python rather than with template loops: a year per day is 365 bars plus a 365-row
# table, and the template engine spent ~150 ms of a 250 ms page on them (bench/dashboard_bench.py).
# Every text goes through escape()/format_html().

_TABLE_TOGGLE = gettext_lazy("Show as a table")


def _figure(
    svg_body: str,
    *,
    width: int,
    height: int,
    chart_id: str,
    title: str,
    desc: str,
    table_head: list[str],
    table_rows: list[list[object]],
) -> SafeString:
    head = "".join(format_html('<th scope="col">{}</th>', h) for h in table_head)
    body = "".join(
        format_html('<tr><th scope="row">{}</th>', row[0])
        + "".join(format_html("<td>{}</td>", cell) for cell in row[1:])
        + "</tr>"
        for row in table_rows
    )
    return format_html(
        # The scroll box keeps the SVG at least 560 px wide on a phone (text stays readable) and
        # is focusable so that a keyboard can scroll it.
        '<figure class="chart"><div class="chart-scroll" tabindex="0">'
        '<svg viewBox="0 0 {w} {h}" role="img" aria-labelledby="{id}-title {id}-desc"'
        ' preserveAspectRatio="xMidYMid meet"><title id="{id}-title">{title}</title>'
        '<desc id="{id}-desc">{desc}</desc>{svg}</svg></div>'
        '<details><summary>{toggle}</summary><table><caption class="sr-only">{title}</caption>'
        "<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></details></figure>",
        w=width,
        h=height,
        id=chart_id,
        title=title,
        desc=desc,
        svg=mark_safe(svg_body),  # noqa: S308 - built with format_html
        toggle=_TABLE_TOGGLE,
        head=mark_safe(head),  # noqa: S308 - built with format_html
        body=mark_safe(body),  # noqa: S308 - built with format_html
    )


def render_column_chart(
    chart: ColumnChart, *, chart_id: str, title: str, desc: str, column_label: str, value_label: str
) -> SafeString:
    parts = [
        format_html(
            '<line x1="{}" x2="{}" y1="{}" y2="{}" class="grid"/>'
            '<text x="{}" y="{}" class="tick" text-anchor="end" dominant-baseline="middle">{}</text>',
            chart.plot_left,
            chart.width,
            y,
            y,
            chart.plot_left - 4,
            y,
            value,
        )
        for y, value in chart.ticks
    ]
    for bar in chart.bars:
        parts.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" class="bar"><title>{}: {}</title></rect>',
                bar.x,
                bar.y,
                bar.width,
                bar.height,
                bar.label,
                bar.value,
            )
        )
        if bar.show_label:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" class="tick">{}</text>',
                    bar.x,
                    chart.plot_bottom + 16,
                    bar.label,
                )
            )
    return _figure(
        "".join(parts),
        width=chart.width,
        height=chart.height,
        chart_id=chart_id,
        title=title,
        desc=desc,
        table_head=[column_label, value_label],
        table_rows=[[bar.label, bar.value] for bar in chart.bars],
    )


def render_bar_list(
    chart: BarList,
    *,
    chart_id: str,
    title: str,
    desc: str,
    column_label: str,
    table_head: list[str],
    table_rows: list[list[object]],
) -> SafeString:
    parts = [
        format_html(
            '<text x="{}" y="{}" class="label" text-anchor="end" dominant-baseline="middle">{}</text>'
            '<rect x="{}" y="{}" width="{}" height="{}" class="bar"><title>{}: {}</title></rect>'
            '<text x="{}" y="{}" class="value" dominant-baseline="middle">{}</text>',
            chart.label_width - 6,
            bar.cy,
            bar.label,
            bar.x,
            bar.y,
            bar.width,
            bar.height,
            bar.label,
            bar.text,
            bar.right + 6,
            bar.cy,
            bar.text,
        )
        for bar in chart.bars
    ]
    return _figure(
        "".join(parts),
        width=chart.width,
        height=chart.height,
        chart_id=chart_id,
        title=title,
        desc=desc,
        table_head=[column_label, *table_head],
        table_rows=table_rows,
    )


def render_funnel(
    chart: BarList,
    *,
    chart_id: str,
    title: str,
    desc: str,
    table_head: list[str],
    table_rows: list[list[object]],
) -> SafeString:
    parts = [
        format_html(
            '<rect x="{}" y="{}" width="{}" height="{}" class="funnel-step"><title>{}: {}</title></rect>'
            '<text x="{}" y="{}" class="funnel-label" text-anchor="middle" dominant-baseline="middle">{}: {}</text>',
            bar.x,
            bar.y,
            bar.width,
            bar.height,
            bar.label,
            bar.value,
            chart.width / 2,
            bar.cy,
            bar.label,
            bar.value,
        )
        for bar in chart.bars
    ]
    return _figure(
        "".join(parts),
        width=chart.width,
        height=chart.height,
        chart_id=chart_id,
        title=title,
        desc=desc,
        table_head=table_head,
        table_rows=table_rows,
    )
