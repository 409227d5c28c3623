"""The SVG geometry and its escaping (no database)."""

from __future__ import annotations

import pytest

from dashboard import charts


def test_column_chart_scales_bars_to_a_round_axis_maximum():
    chart = charts.column_chart([("a", 0), ("b", 7), ("c", 10)], height=228)
    plot_height = chart.plot_bottom - chart.plot_top
    assert [t[1] for t in chart.ticks] == [0, 5, 10]
    assert chart.bars[0].height == 0
    assert chart.bars[2].height == plot_height
    assert chart.bars[1].height == round(plot_height * 0.7, 2)
    assert all(bar.y + bar.height == chart.plot_bottom for bar in chart.bars)


def test_column_chart_labels_only_some_bars_when_there_are_many():
    chart = charts.column_chart([(str(i), i) for i in range(365)], max_labels=10)
    assert sum(bar.show_label for bar in chart.bars) <= 10
    assert chart.bars[0].show_label


def test_empty_chart_has_an_axis_and_no_division_by_zero():
    chart = charts.column_chart([])
    assert chart.bars == [] and chart.ticks[-1][1] == 1
    assert charts.funnel([]).bars == []


def test_bar_list_clamps_shares_and_funnel_is_relative_to_the_first_step():
    bars = charts.bar_list([("x", 1.5, ""), ("y", None, ""), ("z", 0.5, "")]).bars
    assert bars[0].width == 2 * bars[2].width and bars[1].width == 0
    steps = charts.funnel([("a", 10), ("b", 5), ("c", 0)], width=420).bars
    assert steps[1].width == steps[0].width / 2
    assert steps[0].cx == steps[1].cx == 210
    assert steps[2].width == 0


def test_rendered_svg_escapes_labels():
    html = charts.render_column_chart(
        [("<script>", 1)],
        chart_id="c",
        title="T & <b>",
        desc="d",
        column_label="Day",
        value_label="N",
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "T &amp; &lt;b&gt;" in html
    assert 'role="img"' in html and '<title id="c-title">' in html


def test_rendered_numbers_are_not_localized(settings):
    # Coordinates with a thousands separator or a decimal comma would break the SVG.
    settings.USE_THOUSAND_SEPARATOR = True
    html = charts.render_column_chart(
        [("a", 1234567), ("b", 3)],
        chart_id="c",
        title="T",
        desc="d",
        column_label="Day",
        value_label="N",
    )
    assert "<td>1234567</td>" in html and "1,234,567" not in html
    assert 'x1="44" x2="720"' in html


DAYS = [(f"2026-{m:02d}-{d:02d}", (m * d) % 9) for m in (9, 10, 11) for d in range(1, 29)]


def _label_extents(chart: charts.ColumnChart) -> list[tuple[float, float]]:
    """(start, end) of each drawn x label, from its anchor and the width estimate."""
    extents = []
    for bar in chart.bars:
        if bar.show_label:
            w = charts.text_width(bar.label)
            start = {"start": 0, "middle": w / 2, "end": w}[bar.anchor]
            extents.append((bar.label_x - start, bar.label_x - start + w))
    return extents


@pytest.mark.parametrize("narrow", [False, True])
def test_column_labels_stay_inside_the_chart_without_overlapping(narrow):
    width = charts.NARROW if narrow else charts.WIDE
    chart = charts.column_chart(DAYS, width=width, max_labels=10, narrow=narrow)
    extents = _label_extents(chart)
    assert extents and all(start >= 0 and end <= width for start, end in extents), extents
    if narrow:  # the spacing comes from the width estimate there
        assert all(a[1] + charts.LABEL_GAP <= b[0] for a, b in zip(extents, extents[1:]))


def test_wide_chart_drops_the_last_label_that_would_run_off_its_right_edge():
    # 84 days, a label every 9th: the one at day 81 started 32 units before the edge.
    chart = charts.column_chart(DAYS, max_labels=10)
    shown = [i for i, bar in enumerate(chart.bars) if bar.show_label]
    assert shown == list(range(0, 81, 9))
    assert {bar.anchor for bar in chart.bars if bar.show_label} == {"start"}
    assert all(bar.label_x == bar.x for bar in chart.bars if bar.show_label)


def test_narrow_chart_fits_a_phone_and_labels_today():
    chart = charts.column_chart(
        [*DAYS[:-1], ("2026-11-28", 1234)], width=charts.NARROW, narrow=True
    )
    last = chart.bars[-1]
    assert last.show_label and last.anchor == "end" and last.label_x == charts.NARROW
    assert last.right <= chart.width - 8  # today's bar in full
    # The y axis is as wide as its largest number ("2000") and its gap.
    assert chart.ticks[-1][1] == 2000
    assert chart.plot_left - 4 >= charts.text_width("2000")
    assert chart.bars[0].x >= chart.plot_left


def test_narrow_bar_list_puts_each_label_above_its_bar_and_keeps_the_text_inside():
    rows = [("A · Age-related macular degeneration", 1.0, "100 · 100.0%"), ("x" * 80, 0.5, "1")]
    chart = charts.bar_list(rows, width=charts.NARROW, narrow=True)
    first, second = chart.bars
    assert first.anchor == "start" and first.label_x == 0 and first.label_y < first.y
    assert first.shown == rows[0][0]
    assert second.shown.endswith("…") and charts.text_width(second.shown) <= charts.NARROW
    assert second.label == "x" * 80  # the tooltip and the table keep the full label
    assert first.text_x + charts.text_width(first.text) <= charts.NARROW


def test_narrow_funnel_shortens_a_step_that_does_not_fit():
    step = charts.funnel([("y" * 60, 3)], width=charts.NARROW, narrow=True).bars[0]
    assert step.shown.endswith("…")
    assert charts.text_width(step.shown, charts.FUNNEL_FONT) <= charts.NARROW - 8
    assert charts.funnel([("Sent", 3)]).bars[0].shown == "Sent: 3"


def test_every_chart_is_drawn_wide_and_narrow_with_its_own_ids():
    html = charts.render_bar_list(
        [("a", 0.5, "1 · 50.0%")],
        chart_id="c",
        title="T",
        desc="d",
        column_label="C",
        table_head=["n"],
        table_rows=[["a", 1]],
    )
    assert html.count("<svg ") == 2 and html.count("<table>") == 1
    assert '<svg class="chart-wide" viewBox="0 0 720 26"' in html
    assert '<svg class="chart-narrow" viewBox="0 0 360 42"' in html
    assert 'aria-labelledby="c-title c-desc"' in html
    assert 'aria-labelledby="c-narrow-title c-narrow-desc"' in html
