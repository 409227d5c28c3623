"""The SVG geometry and its escaping (no database)."""

from __future__ import annotations

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
        charts.column_chart([("<script>", 1)]),
        chart_id="c",
        title="T & <b>",
        desc="d",
        column_label="Day",
        value_label="N",
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "T &amp; &lt;b&gt;" in html
    assert 'role="img"' in html and '<title id="c-title">' in html
