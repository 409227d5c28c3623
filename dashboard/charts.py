"""Geometry for the server-side SVG charts (no chart library, no JavaScript, no CDN).

These functions only compute coordinates from already-aggregated numbers (a few hundred points at
most); the templates in templates/dashboard/_*.html draw them, so every label goes through the
template engine's escaping and translation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


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


def column_chart(points: list[tuple[str, int]], *, width: int = 720, height: int = 220,
                 max_labels: int = 12) -> ColumnChart:
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
        bars.append(Bar(
            x=round(left + i * slot + gap / 2, 2), y=round(bottom - h, 2),
            width=round(max(slot - gap, 0.5), 2), height=round(h, 2), label=label, value=value,
            show_label=i % every == 0,
        ))
    ticks = [(round(bottom - plot_h * f, 2), round(top_value * f)) for f in (0, 0.5, 1)]
    return ColumnChart(width, height, left, bottom, top, bars, ticks)


@dataclass(frozen=True)
class BarList:
    width: int
    height: int
    label_width: int
    bars: list[Bar]


def bar_list(rows: list[tuple[str, float | None, str]], *, width: int = 720, row_h: int = 26,
             label_width: int = 230) -> BarList:
    """Horizontal bars for shares in [0, 1]: (label, share or None, text shown after the bar)."""
    plot_w = width - label_width - 90
    bars = []
    for i, (label, share, text) in enumerate(rows):
        w = plot_w * max(0.0, min(1.0, share or 0.0))
        bars.append(Bar(x=label_width, y=i * row_h + 4, width=round(w, 2), height=row_h - 8,
                        label=label, value=share or 0.0, text=text))
    return BarList(width, max(row_h * len(rows), row_h), label_width, bars)


def funnel(rows: list[tuple[str, int]], *, width: int = 720, row_h: int = 40) -> BarList:
    """Centred bars whose width is each step's count relative to the first step."""
    first = max((rows[0][1] if rows else 0), 1)
    label_width = 0
    plot_w = width - 20
    bars = []
    for i, (label, value) in enumerate(rows):
        w = max(plot_w * value / first, 2 if value else 0)
        bars.append(Bar(x=round((width - w) / 2, 2), y=i * row_h + 2, width=round(w, 2),
                        height=row_h - 4, label=label, value=value))
    return BarList(width, max(row_h * len(rows), row_h), label_width, bars)
