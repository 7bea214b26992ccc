"""Geometry of the figures page's charts, drawn as inline SVG by the templates.

Server-side, so the charts need no script and no external asset, print as
they look, and pass a strict Content-Security-Policy: colours come from CSS
classes (static/css/figures.css), never from style attributes. Each chart is
followed on the page by a table of the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext as _

from casework.models import Oblast

WIDTH = 720


def fmt(value: int | float | None) -> str:
    if value is None:
        return "—"
    return number_format(value, decimal_pos=0 if float(value).is_integer() else 1, force_grouping=True)


def nice_step(value: float, *, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 x 10^n, at least 1: counts are whole) dividing 0..value into at most ``ticks``."""
    if value <= ticks:
        return 1.0
    raw = value / ticks
    exponent = math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        step = multiple * 10.0**exponent
        if step >= raw:
            return step
    return 10.0 ** (exponent + 1)  # pragma: no cover - the loop ends at 10 x 10^n


def nice_ceiling(value: float) -> float:
    """The axis end: ``value`` rounded up to a whole number of round steps."""
    step = nice_step(value)
    return max(step, math.ceil(value / step) * step)


@dataclass
class Tick:
    position: float
    label: str


@dataclass
class Series:
    css: str
    label: str
    points: str = ""  # "x,y x,y ..." for a polyline
    area: str = ""  # the polygon under the line
    dots: list[tuple[float, float]] = field(default_factory=list)
    end_label: str = ""
    end_x: float = 0.0
    end_y: float = 0.0


@dataclass
class LineChart:
    width: int
    height: int
    left: int
    bottom: int
    right: int
    top: int
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    series: list[Series]
    has_gaps: bool

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    @property
    def y_label_x(self) -> int:
        return self.left - 8

    @property
    def x_label_y(self) -> int:
        return self.height - self.bottom + 20


def monthly_chart(monthly: Sequence[dict[str, Any]]) -> LineChart | None:
    """Cumulative reported and repatriated by month: two areas on one scale (returns sit inside reports)."""
    if not monthly:
        return None
    width, height, left, right, top, bottom = WIDTH, 300, 64, 168, 16, 36
    inner_w, inner_h = width - left - right, height - top - bottom
    values = [month[key] for month in monthly for key in ("reported", "repatriated") if month[key] is not None]
    top_value = nice_ceiling(max(values, default=0))
    count = len(monthly)

    def x(index: int) -> float:
        return left + (inner_w * index / (count - 1) if count > 1 else inner_w / 2)

    def y(value: float) -> float:
        return top + inner_h - inner_h * value / top_value

    step = nice_step(top_value)
    y_ticks = [Tick(round(y(step * i), 1), fmt(step * i)) for i in range(round(top_value / step) + 1)]
    x_ticks = []
    for index, month in enumerate(monthly):
        year, number = month["month"].split("-")
        if index == 0 or number == "01":
            x_ticks.append(Tick(round(x(index), 1), year if number == "01" or index == 0 else ""))
    series = []
    has_gaps = False
    for key, css, label in (
        ("reported", "series-reported", _("Reported")),
        ("repatriated", "series-repatriated", _("Repatriated")),
    ):
        shown = [(x(i), y(month[key])) for i, month in enumerate(monthly) if month[key] is not None]
        has_gaps = has_gaps or len(shown) < count
        if not shown:
            continue
        points = " ".join(f"{px:.1f},{py:.1f}" for px, py in shown)
        base = y(0)
        area = f"{shown[0][0]:.1f},{base:.1f} {points} {shown[-1][0]:.1f},{base:.1f}"
        last_value = next(month[key] for month in reversed(monthly) if month[key] is not None)
        series.append(
            Series(
                css=css,
                label=label,
                points=points,
                area=area,
                dots=[(round(px, 1), round(py, 1)) for px, py in shown] if len(shown) < count else [],
                end_label=f"{label}: {fmt(last_value)}",
                end_x=round(shown[-1][0] + 6, 1),
                end_y=round(shown[-1][1] + 4, 1),
            )
        )
    # Keep the two end labels apart when the lines end close together.
    if len(series) == 2 and abs(series[0].end_y - series[1].end_y) < 14:
        series[1].end_y = round(series[0].end_y + 14, 1)
    return LineChart(width, height, left, bottom, right, top, y_ticks, x_ticks, series, has_gaps)


@dataclass
class Bar:
    label: str
    y: float
    primary: int | None
    secondary: int | None
    primary_width: float
    secondary_width: float
    value_label: str
    value_x: float

    @property
    def text_y(self) -> float:
        return self.y + 12.5


@dataclass
class BarChart:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]
    axis_x: float
    two_measures: bool

    @property
    def label_x(self) -> int:
        return self.label_width - 8


def bar_chart(
    rows: Sequence[tuple[str, int | None, int | None]], *, two_measures: bool, value_label: str = ""
) -> BarChart | None:
    """Horizontal bars, largest first; with two measures the second (returned) is drawn inside the first."""
    if not rows:
        return None
    label_width, right, row_height, bar_height = 220, 160, 24, 16
    inner = WIDTH - label_width - right
    top_value = nice_ceiling(max((value or 0 for _label, value, _second in rows), default=0))
    ordered = sorted(rows, key=lambda row: (row[1] is None, -(row[1] or 0), row[0]))
    bars = []
    for index, (label, primary, secondary) in enumerate(ordered):
        primary_width = inner * (primary or 0) / top_value
        secondary_width = inner * (secondary or 0) / top_value
        if primary is None:
            text = _("hidden (small number)")
        elif two_measures and secondary is None:
            text = _("%(reported)s · returned: hidden") % {"reported": fmt(primary)}
        elif two_measures:
            text = _("%(reported)s · %(returned)s returned") % {"reported": fmt(primary), "returned": fmt(secondary)}
        else:
            text = fmt(primary)
        bars.append(
            Bar(
                label=label,
                y=index * row_height + 4,
                primary=primary,
                secondary=secondary,
                primary_width=round(primary_width, 1),
                secondary_width=round(secondary_width, 1),
                value_label=text,
                value_x=round(label_width + primary_width + 6, 1),
            )
        )
    height = len(ordered) * row_height + 8
    return BarChart(WIDTH, height, label_width, bar_height, bars, label_width, two_measures)


def oblast_name(code: str) -> str:
    try:
        return str(Oblast(code).label)
    except ValueError:
        return code


def page_charts(figures: dict[str, Any], *, intermediaries: dict[str, str]) -> dict[str, Any]:
    """Every chart of the figures page, from one figures result (exact or published)."""
    oblasts = [
        (oblast_name(code), cell["reported"], cell["repatriated"]) for code, cell in figures["by_oblast"].items()
    ]
    via = [
        (intermediaries.get(slug, slug) if slug != "unattributed" else _("No intermediary"), value, None)
        for slug, value in figures["by_via"].items()
        if value != 0
    ]
    return {
        "monthly": monthly_chart(figures["monthly"]),
        "oblast": bar_chart(oblasts, two_measures=True),
        "via": bar_chart(via, two_measures=False),
    }
