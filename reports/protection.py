"""The protection of a release: exact headline totals, and every breakdown cell under differential privacy.

A pure module (no database, no Django): it takes the exact figures of a date,
the release's privacy-loss parameters and a source of noise, and returns the
figures to publish. ``reports.services`` feeds it and stores what it returns;
``docs/figures-method.md`` explains it for the NGOs' statisticians and the press.

The method
----------

*Zero-concentrated differential privacy* (ρ-zCDP, Bun and Steinke 2016) with
the *discrete Gaussian* mechanism (Canonne, Kamath and Steinke 2020), as
implemented by OpenDP (``opendp.measurements.make_gaussian`` on a vector of
integers): every published breakdown cell is its exact count plus an integer
drawn from a discrete Gaussian of standard deviation σ, from OpenDP's own
sampler (cryptographically secure, never seeded, fresh for each release).

The unit of privacy is a child: two registers are neighbours when one holds
a child (with all of its history) and the other does not. The released cells
are chosen so that a child is in at most one cell of each series:

===============================  ================================  ========================
series                           a child is counted, as of D, ...  cells of one child
===============================  ================================  ========================
reported by oblast, sex, age     if in reported(D)                 3
band
repatriated by oblast, sex, age  if in repatriated(D)              3
band
repatriated by intermediary      if in repatriated(D): its return  1
                                 event's intermediary
reported by month of report      if in reported(D): the month of   1
                                 its report
repatriated by month of return   if in repatriated(D): the month   1
                                 of its return event
repatriated by days to return    if in repatriated(D): its days    1
(30-day bands)                   from report to return
lists, per intermediary:         if a list sent to it on or        5 per intermediary,
children on lists, answered or   before D named one of its cases   2 intermediaries at most
waiting 90 days, located,        (answered and waiting exclude
returned, days to return         each other)
===============================  ================================  ========================

So one child changes at most ``CELLS_PER_CHILD`` = 10 cells of the
headline series, each by one: their L2 sensitivity is √10. The lists' cells
are a second measurement: a child on the lists of more intermediaries counts
in the first ``LIST_INTERMEDIARIES_PER_CHILD`` = 2 (by the date of the first
list naming it), so it changes at most ``LIST_CELLS_PER_CHILD`` = 10 of them,
sensitivity √10 again. A release's ρ is split: ``1 - LISTS_RHO_SHARE`` (0.8)
to the headline series, ``LISTS_RHO_SHARE`` (0.2) to the lists (whose cells
count hundreds or thousands of children: their larger noise matters less);
each part's σ is the smallest that spends no more than its share, ρ = 10 /
(2σ²) (OpenDP's ``map`` of the measurement computes it). Under zCDP the two
measurements compose by adding their ρ, and ρ adds up over releases.

The monthly series is released as these monthly counts, never as
cumulative values (a child is in every cumulative value after its
report); the cumulative series is their running sum. Months before
``series_start`` are folded into its first month. The median days to return
is read from the protected histogram of days to return.

Post-processing, which costs no privacy (anything computed from the noisy
cells alone, plus the exact totals that are published anyway):

* every breakdown is made of non-negative integers adding up exactly to its
  exact total (reported, or repatriated): the Euclidean projection of the
  noisy cells onto that set, then rounding that keeps the sum;
* repatriated <= reported in every key of every breakdown (so outstanding
  per key is never negative), and the cumulative repatriated series never
  passes the reported one;
* per intermediary, children on lists >= answered >= located >= returned,
  and waiting 90 days <= on lists - answered; its days to return add up to
  its returned;
* a protected cell below k is published as "fewer than k" (``None``), never
  as a small number: a small protected value would read as a count.

The headline totals (reported, repatriated, outstanding of the whole register)
are exact whenever they are at least k, and "fewer than k" otherwise.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

METHOD = "zcdp-discrete-gaussian"
YEAR_DAYS = 365
# Days to return are released in bands of this many days, the last one open (1800 days and more).
DAY_BAND_WIDTH = 30
DAY_BANDS = 60
REPORTED_CELLS_PER_CHILD = 4  # oblast, sex, age band, month of report
REPATRIATED_CELLS_PER_CHILD = 6  # oblast, sex, age band, intermediary, month of return, days to return
# Lists to intermediaries: a child in at most this many intermediaries' cells, each with at most
# LIST_CELLS_PER_INTERMEDIARY of its cells: on lists, answered or waiting 90 days, located, returned, days to return.
LIST_INTERMEDIARIES_PER_CHILD = 2
LIST_CELLS_PER_INTERMEDIARY = 5
LIST_MEASURES = ("children_on_lists", "answered", "located", "returned", "unanswered_90_days")
LIST_CELLS_PER_CHILD = LIST_INTERMEDIARIES_PER_CHILD * LIST_CELLS_PER_INTERMEDIARY
LISTS_RHO_SHARE = 0.2
CELLS_PER_CHILD = REPORTED_CELLS_PER_CHILD + REPATRIATED_CELLS_PER_CHILD
SENSITIVITY = math.sqrt(CELLS_PER_CHILD)
if LIST_CELLS_PER_CHILD != CELLS_PER_CHILD:  # pragma: no cover - one sensitivity serves both measurements
    raise AssertionError("The lists' measurement assumes the headline series' sensitivity.")
TWO_MEASURE_BREAKDOWNS = ("by_oblast", "by_sex", "by_age_band")

Figures = dict[str, Any]
# Exact integers in, the same number of noisy integers out, for a noise of standard deviation ``scale``.
Noise = Callable[[list[int], float], list[int]]


class ProtectionError(ValueError):
    """The input cannot be protected as asked (a bad parameter, figures that do not add up)."""


# --- privacy-loss accounting ---------------------------------------------------------------


def max_releases_per_year(min_days: int) -> int:
    """The most releases whose dates fit in any 365 days when consecutive ones are ``min_days`` apart."""
    if min_days < 1:
        raise ProtectionError("The minimum number of days between releases must be at least 1.")
    return (YEAR_DAYS - 1) // min_days + 1


def rho_per_release(*, rho_per_year: float, min_days: int) -> float:
    """The ρ one release spends, so that releases at the fastest allowed cadence never exceed the yearly budget."""
    if not (rho_per_year > 0 and math.isfinite(rho_per_year)):
        raise ProtectionError("The privacy-loss budget per year must be a positive number.")
    return rho_per_year / max_releases_per_year(min_days)


def _opendp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def _measurement(scale: float) -> Any:
    dp = _opendp()
    # Integer cells (the discrete Gaussian); the L2 distance is a real number, so √10 is accounted exactly.
    return dp.m.make_gaussian(dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=float), scale=scale)


@functools.lru_cache(maxsize=64)
def noise_scale(rho: float) -> float:
    """The smallest σ whose measurement spends at most ``rho`` for one child (OpenDP's binary search)."""
    if not (rho > 0 and math.isfinite(rho)):
        raise ProtectionError("The ρ of a release must be a positive number.")
    return float(_opendp().binary_search_param(_measurement, d_in=SENSITIVITY, d_out=rho))


def headline_sigma(rho: float) -> float:
    """The noise a release of ``rho`` adds to each cell of its headline tables (the lists take the rest)."""
    return noise_scale(rho * (1 - LISTS_RHO_SHARE))


def spent_rho(scale: float) -> float:
    """The ρ a release with noise ``scale`` spends for one child, as OpenDP accounts it."""
    return float(_measurement(scale).map(SENSITIVITY))


def opendp_noise(values: list[int], scale: float) -> list[int]:
    """The discrete Gaussian mechanism of OpenDP, with its own sampler."""
    return [int(value) for value in _measurement(scale)(values)]


def opendp_version() -> str:
    return metadata.version("opendp")


# --- what is released ------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """The keys of every released series: public, fixed by the code and the date, never by the data.

    ``intermediaries`` ends with the key of returns credited to no intermediary; the lists' cells are
    released for the others.
    """

    oblasts: tuple[str, ...]
    sexes: tuple[str, ...]
    age_bands: tuple[str, ...]
    intermediaries: tuple[str, ...]
    months: tuple[str, ...]

    @classmethod
    def for_date(
        cls,
        *,
        as_of: dt.date,
        series_start: str,
        oblasts: Sequence[str],
        sexes: Sequence[str],
        age_bands: Sequence[str],
        intermediaries: Sequence[str],
    ) -> Layout:
        return cls(
            oblasts=tuple(oblasts),
            sexes=tuple(sexes),
            age_bands=tuple(age_bands),
            intermediaries=tuple(intermediaries),
            months=month_range(series_start, as_of),
        )

    @property
    def list_intermediaries(self) -> tuple[str, ...]:
        return self.intermediaries[:-1]


def _month_index(label: str) -> int:
    try:
        year, month = (int(part) for part in label.split("-"))
    except ValueError:
        raise ProtectionError(f"{label!r} is not a month (YYYY-MM).") from None
    if not 1 <= month <= 12 or len(label) != 7:
        raise ProtectionError(f"{label!r} is not a month (YYYY-MM).")
    return year * 12 + month - 1


def _month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_range(start: str, as_of: dt.date) -> tuple[str, ...]:
    first, last = _month_index(start), as_of.year * 12 + as_of.month - 1
    if first > last:
        raise ProtectionError(f"The monthly series starts in {start}, after the release's date {as_of.isoformat()}.")
    return tuple(_month_label(index) for index in range(first, last + 1))


def day_band_labels() -> tuple[str, ...]:
    closed = tuple(f"{i * DAY_BAND_WIDTH}-{(i + 1) * DAY_BAND_WIDTH - 1}" for i in range(DAY_BANDS))
    return (*closed, f"{DAY_BANDS * DAY_BAND_WIDTH}+")


def _day_band(days: int) -> int:
    return min(max(days, 0) // DAY_BAND_WIDTH, DAY_BANDS)


@dataclass(frozen=True)
class _Cells:
    """The exact released cells, in a fixed order, and where each series sits in the vector."""

    values: list[int]
    spans: dict[str, tuple[int, int]]

    @property
    def lists_start(self) -> int:
        """Where the lists' cells (the second measurement) begin: they come last."""
        starts = [start for name, (start, _stop) in self.spans.items() if name.startswith("lists.")]
        return min(starts, default=len(self.values))

    def part(self, name: str, vector: Sequence[int]) -> list[int]:
        start, stop = self.spans[name]
        return list(vector[start:stop])


def exact_cells(exact: Figures, series: Mapping[str, Any], layout: Layout) -> _Cells:
    """The vector of exact counts released (noised) for a date, in the layout's order.

    ``series`` holds what the exact figures do not: children in reported(D) by
    month of report, children in repatriated(D) by month of return event, and
    by days to return (``reports.figures.compute_release_series``).
    """
    values: list[int] = []
    spans: dict[str, tuple[int, int]] = {}

    def add(name: str, counts: Sequence[int]) -> None:
        spans[name] = (len(values), len(values) + len(counts))
        values.extend(int(count) for count in counts)

    keys = {"by_oblast": layout.oblasts, "by_sex": layout.sexes, "by_age_band": layout.age_bands}
    for name in TWO_MEASURE_BREAKDOWNS:
        unknown = set(exact[name]) - set(keys[name])
        if unknown:
            raise ProtectionError(f"{name}: keys outside the release's layout: {', '.join(sorted(unknown))}.")
        for measure in ("reported", "repatriated"):
            add(f"{name}.{measure}", [exact[name].get(key, {}).get(measure, 0) for key in keys[name]])
    by_via = dict.fromkeys(layout.intermediaries, 0)
    credited_to_none = layout.intermediaries[-1]
    for key, count in exact["by_via"].items():
        # A return credited to an organisation that is no longer an intermediary has no key of its own.
        by_via[key if key in by_via else credited_to_none] += count
    add("by_via", list(by_via.values()))
    first = _month_index(layout.months[0])
    for name, source in (("reported_by_month", "reported_by_month"), ("repatriated_by_month", "repatriated_by_month")):
        counts = [0] * len(layout.months)
        for label, count in series[source].items():
            index = _month_index(label) - first
            if index >= len(counts):
                raise ProtectionError(f"{source}: {label} is after the release's date.")
            counts[max(index, 0)] += int(count)  # months before the series start are folded into its first month
        add(name, counts)
    bands = [0] * (DAY_BANDS + 1)
    for days, count in series["days_to_return"].items():
        bands[_day_band(int(days))] += int(count)
    add("by_days_to_return", bands)
    # Lists to an organisation that is no longer an intermediary are not released (no key of their own).
    lists = series.get("lists", {})
    for slug in layout.list_intermediaries:
        cell = lists.get(slug, {})
        add(f"lists.{slug}", [int(cell.get(name, 0)) for name in LIST_MEASURES])
        list_bands = [0] * (DAY_BANDS + 1)
        for days, count in cell.get("days_to_return", {}).items():
            list_bands[_day_band(int(days))] += int(count)
        add(f"lists.{slug}.days", list_bands)
    return _Cells(values, spans)


# --- post-processing ---------------------------------------------------------------------------


def fit_to_total(values: Sequence[float], total: int, upper: Sequence[int] | None = None) -> list[int]:
    """The non-negative integers closest to ``values`` that add up to ``total`` (each at most ``upper``).

    The Euclidean projection onto {0 <= x <= upper, sum x = total}: x_i =
    clip(v_i - λ) for the λ that makes the sum right (the sum is piecewise
    linear and non-increasing in λ: found between its breakpoints), then
    rounded down, and the units still missing given to the largest
    fractional parts (ties: the first key). Values that already satisfy the
    constraints come back unchanged.
    """
    count = len(values)
    if total < 0:
        raise ProtectionError("A total cannot be negative.")
    bounds = [math.inf] * count if upper is None else [float(bound) for bound in upper]
    if len(bounds) != count or any(bound < 0 for bound in bounds):
        raise ProtectionError("Every cell needs a non-negative upper bound.")
    if count == 0 or sum(bounds) < total:
        if count == 0 and total == 0:
            return []
        raise ProtectionError("The cells cannot add up to their total within their bounds.")
    floats = [float(value) for value in values]

    def fitted(shift: float) -> list[float]:
        return [min(max(value - shift, 0.0), bound) for value, bound in zip(floats, bounds, strict=True)]

    def fitted_sum(shift: float) -> float:
        return sum(fitted(shift))

    points = sorted(
        {*floats, *(value - bound for value, bound in zip(floats, bounds, strict=True) if bound < math.inf)}
    )
    # Below every breakpoint the sum is at least the total (every cell at its bound, or above the total).
    points.insert(0, points[0] - total - 1.0)
    low, high = 0, len(points) - 1  # fitted_sum(points[low]) >= total; find the last such breakpoint
    if fitted_sum(points[high]) >= total:
        shift = points[high]
    else:
        while high - low > 1:
            middle = (low + high) // 2
            if fitted_sum(points[middle]) >= total:
                low = middle
            else:
                high = middle
        left, right = fitted_sum(points[low]), fitted_sum(points[high])
        shift = points[low] + (left - total) / (left - right) * (points[high] - points[low])
    shares = [round(value, 6) for value in fitted(shift)]
    result = [int(min(math.floor(share), bound)) for share, bound in zip(shares, bounds, strict=True)]
    order = sorted(range(count), key=lambda i: (-(shares[i] - math.floor(shares[i])), i))
    # Each pass moves at least one unit while any is missing (the bounds leave room: checked above).
    while (missing := total - sum(result)) > 0:
        for i in order:
            if missing and result[i] < bounds[i]:
                result[i] += 1
                missing -= 1
    while (missing := total - sum(result)) < 0:
        for i in reversed(order):
            if missing and result[i] > 0:
                result[i] -= 1
                missing += 1
    return result


def cap_cumulative(repatriated: Sequence[int], reported: Sequence[int]) -> list[int]:
    """Monthly repatriated counts moved to later months where their running sum would pass the reported one's.

    Every child is reported before it returns, so the cumulative repatriated
    count never passes the cumulative reported count. The sum is kept (it
    needs sum(repatriated) <= sum(reported)).
    """
    if sum(repatriated) > sum(reported):
        raise ProtectionError("More repatriated than reported.")
    result: list[int] = []
    carried = reported_so_far = repatriated_so_far = 0
    for returned, new in zip(repatriated, reported, strict=True):
        reported_so_far += new
        available = returned + carried
        taken = min(available, reported_so_far - repatriated_so_far)
        result.append(taken)
        carried = available - taken
        repatriated_so_far += taken
    return result


def median_from_bands(bands: Sequence[int]) -> int | None:
    """The median days to return read from a histogram of 30-day bands (linear within the band)."""
    count = sum(bands)
    if count <= 0:
        return None
    rank = count / 2
    seen = 0
    for index, size in enumerate(bands):
        if size and seen + size >= rank:
            low = index * DAY_BAND_WIDTH
            if index == DAY_BANDS:
                return low
            return round(low + (rank - seen) / size * DAY_BAND_WIDTH)
        seen += size
    return DAY_BANDS * DAY_BAND_WIDTH  # pragma: no cover - the loop always reaches the rank


def non_increasing(values: Sequence[float]) -> list[int]:
    """The non-negative, non-increasing integers closest to ``values`` (pool adjacent violators, then rounding).

    Used for a chain of counts each within the previous one (on lists >= answered >= located >= returned).
    """
    blocks: list[list[float]] = []  # [mean, size]
    for value in values:
        blocks.append([float(value), 1.0])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            mean, size = blocks.pop()
            blocks[-1] = [(blocks[-1][0] * blocks[-1][1] + mean * size) / (blocks[-1][1] + size), blocks[-1][1] + size]
    result: list[int] = []
    for mean, size in blocks:
        result.extend([max(round(mean), 0)] * int(size))
    return result


def protected_lists(
    noisy: Sequence[int], cells: _Cells, layout: Layout, *, k: int
) -> dict[str, dict[str, int | float | None]]:
    """The lists' cells per intermediary as published: consistent with each other, small ones hidden."""
    published: dict[str, dict[str, int | float | None]] = {}
    for slug in layout.list_intermediaries:
        on_lists, answered, located, returned, waiting = cells.part(f"lists.{slug}", noisy)
        on_lists, answered, located, returned = non_increasing([on_lists, answered, located, returned])
        waiting = min(max(waiting, 0), on_lists - answered)
        bands = fit_to_total(cells.part(f"lists.{slug}.days", noisy), returned)
        published[slug] = {
            "children_on_lists": shown(on_lists, k),
            "answered": shown(answered, k),
            "located": shown(located, k),
            "returned": shown(returned, k),
            "unanswered_90_days": shown(waiting, k),
            "median_days_to_return": median_from_bands(bands) if returned >= k else None,
        }
    return published


def shown(value: int, k: int) -> int | None:
    """A protected cell as published: None ("fewer than k") below k."""
    return value if value >= k else None


# --- the release ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Protected:
    figures: Figures
    rho: float
    sigma: float


def protect(
    exact: Figures,
    series: Mapping[str, Any],
    *,
    layout: Layout,
    rho: float,
    k: int,
    noise: Noise = opendp_noise,
    parameters: Mapping[str, Any] | None = None,
) -> Protected:
    """The figures to publish as of ``exact['as_of']``: exact totals, protected cells, spending ``rho``.

    ``parameters``: more facts to record with the method (the budget, the cadence), copied into its block.
    """
    if k < 2:
        raise ProtectionError("The minimum cell size k must be at least 2.")
    totals = exact["totals"]
    reported, repatriated = int(totals["reported"]), int(totals["repatriated"])
    if not 0 <= repatriated <= reported or totals["outstanding"] != reported - repatriated:
        raise ProtectionError("The exact totals do not add up.")
    cells = exact_cells(exact, series, layout)
    _check_sums(cells, reported=reported, repatriated=repatriated)
    sigma = headline_sigma(rho)
    lists_sigma = noise_scale(rho * LISTS_RHO_SHARE)
    spent = spent_rho(sigma) + spent_rho(lists_sigma)
    split = cells.lists_start
    noisy = noise(list(cells.values[:split]), sigma) + noise(list(cells.values[split:]), lists_sigma)
    if len(noisy) != len(cells.values) or not all(isinstance(value, int) for value in noisy):
        raise ProtectionError("The noise source must return one integer per cell.")

    figures: Figures = {
        "as_of": exact["as_of"],
        # The JSON form of DESIGN section 4: exact figures say false.
        "published": True,
        "method": {
            "name": METHOD,
            "rho": spent,
            "sigma": sigma,
            "lists_sigma": lists_sigma,
            "lists_rho_share": LISTS_RHO_SHARE,
            "list_intermediaries_per_child": LIST_INTERMEDIARIES_PER_CHILD,
            "sensitivity": SENSITIVITY,
            "cells_per_child": CELLS_PER_CHILD,
            "min_cell": k,
            "series_start": layout.months[0],
            "day_band_width": DAY_BAND_WIDTH,
            "opendp": opendp_version(),
            **dict(parameters or {}),
        },
        "exact": ["totals"],
        "min_cell": k,
        "totals": {
            "reported": shown(reported, k),
            "repatriated": shown(repatriated, k),
            "outstanding": shown(reported - repatriated, k),
        },
    }
    if "records" in exact:
        # Cases before linking (DESIGN section 4): exact like the totals.
        figures["records"] = {key: shown(int(value), k) for key, value in exact["records"].items()}
        figures["exact"].append("records")
    keys = {"by_oblast": layout.oblasts, "by_sex": layout.sexes, "by_age_band": layout.age_bands}
    for name in TWO_MEASURE_BREAKDOWNS:
        reported_cells = fit_to_total(cells.part(f"{name}.reported", noisy), reported)
        repatriated_cells = fit_to_total(cells.part(f"{name}.repatriated", noisy), repatriated, upper=reported_cells)
        figures[name] = {
            key: {"reported": shown(r, k), "repatriated": shown(p, k)}
            for key, r, p in zip(keys[name], reported_cells, repatriated_cells, strict=True)
        }
    via = fit_to_total(cells.part("by_via", noisy), repatriated)
    figures["by_via"] = {key: shown(value, k) for key, value in zip(layout.intermediaries, via, strict=True)}

    new_reported = fit_to_total(cells.part("reported_by_month", noisy), reported)
    new_repatriated = cap_cumulative(fit_to_total(cells.part("repatriated_by_month", noisy), repatriated), new_reported)
    monthly = []
    cumulative_reported = cumulative_repatriated = 0
    for label, month_reported, month_repatriated in zip(layout.months, new_reported, new_repatriated, strict=True):
        cumulative_reported += month_reported
        cumulative_repatriated += month_repatriated
        monthly.append(
            {
                "month": label,
                "reported": shown(cumulative_reported, k),
                "repatriated": shown(cumulative_repatriated, k),
                "reported_in_month": shown(month_reported, k),
                "repatriated_in_month": shown(month_repatriated, k),
            }
        )
    figures["monthly"] = monthly
    bands = fit_to_total(cells.part("by_days_to_return", noisy), repatriated)
    figures["by_days_to_return"] = {
        label: shown(value, k) for label, value in zip(day_band_labels(), bands, strict=True)
    }
    figures["median_days_to_return"] = median_from_bands(bands) if repatriated >= k else None
    figures["lists"] = protected_lists(noisy, cells, layout, k=k)
    return Protected(figures=figures, rho=spent, sigma=sigma)


def _check_sums(cells: _Cells, *, reported: int, repatriated: int) -> None:
    """Every exact series adds up to its total: a mismatch would publish figures that contradict the totals."""
    expected = {
        **{f"{name}.reported": reported for name in TWO_MEASURE_BREAKDOWNS},
        **{f"{name}.repatriated": repatriated for name in TWO_MEASURE_BREAKDOWNS},
        "by_via": repatriated,
        "reported_by_month": reported,
        "repatriated_by_month": repatriated,
        "by_days_to_return": repatriated,
    }
    for name, total in expected.items():
        found = sum(cells.part(name, cells.values))
        if found != total:
            raise ProtectionError(f"The exact {name} adds up to {found}, not to its total {total}.")
    for name in cells.spans:
        if name.startswith("lists.") and not name.endswith(".days"):
            on_lists, answered, located, returned, waiting = cells.part(name, cells.values)
            days = sum(cells.part(f"{name}.days", cells.values))
            if not (on_lists >= answered >= located >= returned == days and waiting <= on_lists - answered):
                raise ProtectionError(f"The exact {name} cells do not hold together.")
