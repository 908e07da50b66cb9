"""The dashboard's chart geometry, without a browser or a database: counts in, shapes out."""

from __future__ import annotations

import ast
from datetime import date, timedelta
from pathlib import Path

import pytest

from console.workspace import charts
from console.workspace.charts import Bar, bar_list_chart, day_chart, legend, nice_ceiling

SERIES = [("centre", "Centre"), ("written_only", "Written only")]
DAYS = [date(2026, 11, 30), date(2026, 12, 1)]


@pytest.mark.parametrize(("value", "steps", "ceiling"), [
    (0, 4, 4), (-3, 4, 4), (4, 4, 4), (7, 4, 8), (11, 4, 20), (21, 4, 40), (800, 4, 800),
    (1001, 4, 2000), (5, 5, 5), (6, 5, 10),
])
def test_a_ceiling_is_the_next_round_number_that_splits_into_whole_steps(value, steps, ceiling):
    assert nice_ceiling(value, steps) == ceiling
    assert ceiling % steps == 0 and ceiling >= value


def test_stacked_day_bars_sit_on_each_other_and_reach_the_top_at_the_ceiling():
    counts = {DAYS[0]: {}, DAYS[1]: {"centre": 3, "written_only": 1}}
    chart = day_chart("Calls", DAYS, counts, SERIES, width=760, height=260)
    centre, written = chart.bars
    assert (centre.css, written.css) == ("s-centre", "s-written_only")
    # Plot from y=12 to y=220; the ceiling for 4 is 4, so a call is 52 pixels tall.
    assert (centre.y + centre.height, centre.height) == (220, 156)
    assert (written.y + written.height, written.y) == (centre.y, 12)
    assert centre.x == written.x and centre.width == written.width
    assert centre.title == "Tue 1 Dec 2026: Centre 3"
    assert [label for _, _, label in chart.x_labels] == ["30 Nov", "1 Dec"]
    assert chart.y_ticks[0] == (220, "0") and chart.y_ticks[-1] == (12, "4")
    assert not chart.empty


def test_side_by_side_day_bars_share_the_slot_and_stand_on_the_axis():
    counts = {DAYS[0]: {"centre": 2, "written_only": 2}, DAYS[1]: {}}
    chart = day_chart("Marks", DAYS, counts, SERIES, stacked=False)
    first, second = chart.bars
    assert first.y + first.height == second.y + second.height == chart.plot_bottom
    assert second.x == pytest.approx(first.x + first.width)
    assert first.height == second.height


def test_a_chart_with_no_counts_is_empty_with_no_bars_and_no_legend():
    chart = day_chart("Calls", DAYS, {d: {} for d in DAYS}, SERIES)
    assert chart.empty and chart.bars == [] and chart.legend == []


def test_horizontal_bars_stack_left_to_right_in_one_row_per_item():
    chart = bar_list_chart("Agents", [("Alex", {"centre": 1, "written_only": 3}),
                                      ("Jo", {"written_only": 2})], SERIES)
    alex_centre, alex_written, jo_written = chart.bars
    assert alex_centre.x == chart.plot_left == 150
    assert alex_written.x == pytest.approx(alex_centre.x + alex_centre.width)
    assert alex_centre.y == alex_written.y < jo_written.y
    assert [label for _, _, label in chart.x_labels] == ["Alex", "Jo"]
    assert chart.height == 8 + 24 * 2 + 30


def test_a_long_label_widens_the_label_column_and_the_chart_by_the_same_amount():
    short = bar_list_chart("Numbers", [("Jo", {"centre": 1})], SERIES)
    name = "07700 900123 (QL-123456789)"
    long = bar_list_chart("Numbers", [(name, {"centre": 1})], SERIES)
    assert long.plot_left > short.plot_left
    assert long.width - short.width == long.plot_left - short.plot_left
    assert long.plot_right - long.plot_left == short.plot_right - short.plot_left


def test_the_legend_names_only_the_series_that_drew_a_bar_in_series_order():
    bars = [Bar(0, 0, 1, 1, "s-written_only", ""), Bar(0, 0, 1, 1, "s-other", "")]
    assert legend(bars, SERIES) == [("s-written_only", "Written only")]


def test_a_fortnight_of_days_gets_one_label_per_day_inside_the_plot():
    days = [date(2026, 11, 18) + timedelta(days=n) for n in range(14)]
    chart = day_chart("Calls", days, {d: {"centre": 1} for d in days}, SERIES)
    xs = [x for x, _, _ in chart.x_labels]
    assert len(xs) == 14 and xs == sorted(xs)
    assert chart.plot_left < xs[0] and xs[-1] < chart.plot_right


def test_the_geometry_imports_no_framework_database_or_other_workspace_module():
    tree = ast.parse(Path(charts.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    roots = {name.split(".")[0] for name in imported}
    assert roots <= {"__future__", "math", "collections", "dataclasses", "datetime", "callflow"}
