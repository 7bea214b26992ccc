"""Geometry of the figures page's charts, drawn as inline SVG by the templates.

Server-side, so the charts need no script and no external asset, print as
they look, and pass a strict Content-Security-Policy: colours come from CSS
classes (static/css/figures.css), never from style attributes. Each chart is
followed on the page by a table of the same numbers.

The geometry depends on the numbers only, never on the language: label
columns have fixed widths (a long name wraps onto a second line), bars are
ordered by value and then by key, and coordinates are plain numbers
(``{% localize off %}`` in the templates, so no decimal comma reaches SVG).
Every chart comes in two layouts: ``wide`` for a laptop, ``narrow`` for a
phone (labels above the bars), and the stylesheet shows the one that fits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext as _

from casework.models import Oblast

# Average advance of a 12 px system-font character, for wrapping labels (generous: Cyrillic is wider).
CHAR_WIDTH = 7.0
NARROW_CHAR_WIDTH = 7.6  # the phone layout's 13 px text


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


def nice_ceiling(value: float, *, ticks: int = 5) -> float:
    """The axis end: ``value`` rounded up to a whole number of round steps."""
    step = nice_step(value, ticks=ticks)
    return max(step, math.ceil(value / step) * step)


def wrap(text: str, *, width: float) -> list[str]:
    """A label on at most two lines of about ``width`` pixels (the second shortened with … if need be)."""
    limit = max(4, int(width / CHAR_WIDTH))
    if len(text) <= limit:
        return [text]
    words = text.split()
    first = ""
    while words and len(f"{first} {words[0]}".strip()) <= limit:
        first = f"{first} {words.pop(0)}".strip()
    if not first:  # one long word
        first, rest = text[:limit], text[limit:]
    else:
        rest = " ".join(words)
    if len(rest) > limit:
        rest = rest[: limit - 1] + "…"
    return [first, rest]


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
    show_end_labels: bool = True

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    @property
    def y_label_x(self) -> int:
        return self.left - 6

    @property
    def x_label_y(self) -> int:
        return self.height - self.bottom + 18


@dataclass(frozen=True)
class _LineLayout:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    end_labels: bool
    every_year: int


LINE_LAYOUTS = {
    "wide": _LineLayout(width=720, height=300, left=64, right=168, top=16, bottom=36, end_labels=True, every_year=1),
    "narrow": _LineLayout(width=360, height=240, left=52, right=14, top=12, bottom=30, end_labels=False, every_year=1),
}


def monthly_chart(monthly: Sequence[dict[str, Any]], *, layout: str = "wide") -> LineChart | None:
    """Cumulative reported and repatriated by month: two areas on one scale (returns sit inside reports)."""
    if not monthly:
        return None
    shape = LINE_LAYOUTS[layout]
    width, height, left, right, top, bottom = (
        shape.width,
        shape.height,
        shape.left,
        shape.right,
        shape.top,
        shape.bottom,
    )
    inner_w, inner_h = width - left - right, height - top - bottom
    values = [month[key] for month in monthly for key in ("reported", "repatriated") if month[key] is not None]
    ticks = 5 if layout == "wide" else 4
    top_value = nice_ceiling(max(values, default=0), ticks=ticks)
    count = len(monthly)

    def x(index: int) -> float:
        return left + (inner_w * index / (count - 1) if count > 1 else inner_w / 2)

    def y(value: float) -> float:
        return top + inner_h - inner_h * value / top_value

    step = nice_step(top_value, ticks=ticks)
    y_ticks = [Tick(round(y(step * i), 1), fmt(step * i)) for i in range(round(top_value / step) + 1)]
    x_ticks = []
    for index, month in enumerate(monthly):
        year, number = month["month"].split("-")
        if index == 0 or number == "01":
            label = year if number == "01" or index == 0 else ""
            if layout == "narrow" and index == 0 and number != "01" and count > 1:
                label = ""  # no room beside the next January on a phone
            x_ticks.append(Tick(round(x(index), 1), label))
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
    return LineChart(
        width, height, left, bottom, right, top, y_ticks, x_ticks, series, has_gaps, show_end_labels=shape.end_labels
    )


@dataclass
class Bar:
    key: str
    label_lines: list[str]
    y: float
    primary: int | None
    secondary: int | None
    primary_width: float
    secondary_width: float
    value_label: str
    value_x: float
    label_y: float
    value_y: float

    @property
    def label_line_ys(self) -> list[tuple[str, float]]:
        return [(line, round(self.label_y + 13 * index, 1)) for index, line in enumerate(self.label_lines)]


@dataclass
class BarChart:
    width: int
    height: int
    label_x: float
    label_anchor: str
    value_anchor: str
    bar_height: int
    axis_x: float
    bars: list[Bar]
    two_measures: bool


@dataclass(frozen=True)
class _BarLayout:
    width: int
    label_width: int  # the label column (wide) or 0 (narrow: labels above the bars)
    bar_area: int
    row_height: int
    bar_height: int


BAR_LAYOUTS = {
    # 250 px of labels, 330 px of bars, 200 px for the value after the longest bar.
    "wide": _BarLayout(width=780, label_width=250, bar_area=330, row_height=30, bar_height=16),
    # A phone: the label and the value on one line, the bar under them, full width.
    "narrow": _BarLayout(width=360, label_width=0, bar_area=356, row_height=40, bar_height=13),
}


def bar_chart(
    rows: Sequence[tuple[str, str, int | None, int | None]],
    *,
    two_measures: bool,
    layout: str = "wide",
    min_cell: int | None = None,
) -> BarChart | None:
    """Horizontal bars, largest first; with two measures the second (returned) is drawn inside the first.

    ``rows`` are (key, label, primary, secondary). Equal values are ordered by key,
    so the bars stand in the same order in every language. A value of None is one a
    release shows only as "fewer than ``min_cell``".
    """
    if not rows:
        return None
    shape = BAR_LAYOUTS[layout]
    top_value = nice_ceiling(max((value or 0 for _key, _label, value, _second in rows), default=0))
    ordered = sorted(rows, key=lambda row: (row[2] is None, -(row[2] or 0), row[0]))
    bars = []
    narrow = layout == "narrow"
    for index, (key, label, primary, secondary) in enumerate(ordered):
        row_top = index * shape.row_height + 4
        primary_width = shape.bar_area * (primary or 0) / top_value
        secondary_width = shape.bar_area * (secondary or 0) / top_value
        if primary is None:
            text = _("fewer than %(k)s") % {"k": min_cell} if min_cell else _("hidden (small number)")
        elif two_measures and secondary is None:
            text = (
                _("%(reported)s · returned: fewer than %(k)s") % {"reported": fmt(primary), "k": min_cell}
                if min_cell
                else _("%(reported)s · returned: hidden") % {"reported": fmt(primary)}
            )
        elif two_measures:
            text = _("%(reported)s · %(returned)s returned") % {"reported": fmt(primary), "returned": fmt(secondary)}
        else:
            text = fmt(primary)
        if narrow:
            # One line, shared with the value (right-aligned): shortened if both would not fit.
            room = shape.width - len(text) * NARROW_CHAR_WIDTH - 10
            fits = len(label) * NARROW_CHAR_WIDTH <= room
            lines = [label if fits else label[: max(3, int(room / NARROW_CHAR_WIDTH) - 1)] + "…"]
            bar_y, label_y, value_y, value_x = row_top + 19.0, row_top + 13.0, row_top + 13.0, float(shape.width)
        else:
            lines = wrap(label, width=shape.label_width - 12)
            bar_y = row_top + (shape.row_height - shape.bar_height) / 2 - 2
            label_y = bar_y + 12.5 - (6.5 if len(lines) == 2 else 0)
            value_y = bar_y + 12.5
            value_x = round(shape.label_width + primary_width + 6, 1)
        bars.append(
            Bar(
                key=key,
                label_lines=lines,
                y=round(bar_y, 1),
                primary=primary,
                secondary=secondary,
                primary_width=round(primary_width, 1),
                secondary_width=round(secondary_width, 1),
                value_label=text,
                value_x=value_x,
                label_y=round(label_y, 1),
                value_y=round(value_y, 1),
            )
        )
    height = len(ordered) * shape.row_height + 8
    return BarChart(
        width=shape.width,
        height=height,
        label_x=2 if narrow else shape.label_width - 8,
        label_anchor="start" if narrow else "end",
        value_anchor="end" if narrow else "start",
        bar_height=shape.bar_height,
        axis_x=2 if narrow else shape.label_width,
        bars=bars,
        two_measures=two_measures,
    )


def oblast_name(code: str) -> str:
    try:
        return str(Oblast(code).label)
    except ValueError:
        return code


def page_charts(figures: dict[str, Any], *, intermediaries: dict[str, str]) -> dict[str, Any]:
    """Every chart of the figures page, in both layouts, from one figures result (exact, or a release's)."""
    min_cell = figures.get("min_cell") if figures.get("method") else None
    oblasts = [
        (code, oblast_name(code), cell["reported"], cell["repatriated"]) for code, cell in figures["by_oblast"].items()
    ]
    via = [
        (slug, intermediaries.get(slug, slug) if slug != "unattributed" else _("No intermediary"), value, None)
        for slug, value in figures["by_via"].items()
        if value != 0
    ]
    return {
        name: {layout: build(layout) for layout in ("wide", "narrow")}
        for name, build in (
            ("monthly", lambda layout: monthly_chart(figures["monthly"], layout=layout)),
            ("oblast", lambda layout: bar_chart(oblasts, two_measures=True, layout=layout, min_cell=min_cell)),
            ("via", lambda layout: bar_chart(via, two_measures=False, layout=layout, min_cell=min_cell)),
        )
    }
