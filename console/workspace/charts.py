"""Chart geometry for the dashboard's server-rendered SVG: counts in, rectangles and labels out.

Pure: no Flask, no database, no clock; the template only draws what these functions lay out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from callflow.words import short_date

# A series is (key, name): the key picks its colour (CSS class s-<key>), the name is shown.
Series = Sequence[tuple[str, str]]

# The chart's 11px labels: a digit or letter is at most about 7px wide in the sans-serif fonts.
LABEL_CHAR_WIDTH = 7.0
LABEL_MIN_WIDTH = 150


@dataclass(frozen=True)
class Bar:
    """A rectangle of a chart."""

    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Chart:
    """A chart laid out for an SVG template: bars, axis labels and a legend."""

    label: str
    width: int
    height: int
    bars: list[Bar]
    x_labels: list[tuple[float, float, str]]
    y_ticks: list[tuple[float, str]]
    legend: list[tuple[str, str]]
    plot_left: float
    plot_right: float
    plot_bottom: float
    empty: bool


def nice_ceiling(value: int, steps: int = 4) -> int:
    """The smallest 1-2-5 round number at least `value` that splits into `steps` whole steps."""
    if value <= 0:
        return steps
    raw = value / steps
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    for factor in (1, 2, 5, 10):
        step = max(1, factor * power)
        if step * steps >= value:
            return int(step * steps)
    return int(10 * power * steps)


def day_chart(label: str, days: Sequence[date], counts: Mapping[date, Mapping[str, int]],
              series: Series, stacked: bool = True,
              width: int = 760, height: int = 260) -> Chart:
    """Bars per local day, stacked or side by side, one colour per series."""
    left, right, top, bottom = 44, width - 10, 12, height - 40
    totals = [sum(counts[d].get(k, 0) for k, _ in series) if stacked
              else max([counts[d].get(k, 0) for k, _ in series] or [0]) for d in days]
    ceiling = nice_ceiling(max(totals or [0]))
    slot = (right - left) / max(len(days), 1)
    bar_width = slot * 0.7
    scale = (bottom - top) / ceiling
    bars: list[Bar] = []
    x_labels = []
    for i, d in enumerate(days):
        x0 = left + i * slot + (slot - bar_width) / 2
        base = bottom
        for j, (key, name) in enumerate(series):
            value = counts[d].get(key, 0)
            if not value:
                continue
            h = value * scale
            title = f"{short_date(d)}: {name} {value}"
            if stacked:
                base -= h
                bars.append(Bar(x0, base, bar_width, h, f"s-{key}", title))
            else:
                w = bar_width / len(series)
                bars.append(Bar(x0 + j * w, bottom - h, w, h, f"s-{key}", title))
        x_labels.append((left + i * slot + slot / 2, bottom + 16, f"{d.day} {d:%b}"))
    ticks = [(bottom - (ceiling * k / 4) * scale, str(int(ceiling * k / 4))) for k in range(5)]
    return Chart(label, width, height, bars, x_labels, ticks, legend(bars, series),
                 left, right, bottom, not any(totals))


def bar_list_chart(label: str, items: Sequence[tuple[str, Mapping[str, int]]],
                   series: Series, width: int = 460) -> Chart:
    """Horizontal bars, one row per item (an agent, a number), stacked by series; the label
    column is as wide as its longest label, and the chart widens to keep the plot's width."""
    row = 24
    longest = max((len(name) for name, _ in items), default=0)
    left = max(LABEL_MIN_WIDTH, math.ceil(longest * LABEL_CHAR_WIDTH) + 16)
    width += max(0, left - LABEL_MIN_WIDTH)
    right, top = width - 16, 8
    height = top + row * max(len(items), 1) + 30
    totals = [sum(v.get(k, 0) for k, _ in series) for _, v in items]
    ceiling = nice_ceiling(max(totals or [0]))
    scale = (right - left) / ceiling
    bars: list[Bar] = []
    labels = []
    for i, (name, values) in enumerate(items):
        y = top + i * row + 4
        x = left
        for key, series_name in series:
            value = values.get(key, 0)
            if value:
                bars.append(Bar(x, y, value * scale, row - 8, f"s-{key}",
                                f"{name}: {series_name} {value}"))
                x += value * scale
        labels.append((left - 8, y + row / 2, name))
    bottom = top + row * max(len(items), 1)
    ticks = [(left + (ceiling * k / 4) * scale, str(int(ceiling * k / 4))) for k in range(5)]
    return Chart(label, width, height, bars, labels, ticks, legend(bars, series),
                 left, right, bottom, not any(totals))


def legend(bars: Sequence[Bar], series: Series) -> list[tuple[str, str]]:
    """The legend's (CSS class, name) pairs: only the series that drew at least one bar."""
    drawn = {bar.css for bar in bars}
    return [(f"s-{key}", name) for key, name in series if f"s-{key}" in drawn]
