"""Property-based: published figures never show a cell between 1 and k-1, and no hidden cell can be worked out.

The attacker here knows everything public: the totals, every shown cell, that
hidden cells are at least 1 (zeros are never hidden), that a key's
repatriated count is at most its reported count, and that a column adds up
to its total. For every breakdown it enumerates all tables that agree with
the published figures, and each hidden cell must take at least two values in
them. Small random registers keep the enumeration exhaustive.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from reports.disclosure import publish

OBLASTS = ("UA-09", "UA-14", "UA-43", "UA-65")
VIAS = ("qatar", "vatican", "south-africa")
BANDS = ("0-4", "14-17", "unknown")

children = st.lists(
    st.tuples(
        st.sampled_from(OBLASTS),
        st.sampled_from(("F", "M", "U")),
        st.sampled_from(BANDS),
        st.booleans(),  # repatriated
        st.sampled_from((*VIAS, "unattributed")),
    ),
    max_size=32,
)
steps = st.lists(st.integers(min_value=-4, max_value=12), max_size=10)


def exact_figures(people, monthly_steps):
    def breakdown(index, keys, keep_empty):
        cells = {key: {"reported": 0, "repatriated": 0} for key in keys}
        for person in people:
            cells[person[index]]["reported"] += 1
            cells[person[index]]["repatriated"] += person[3]
        return cells if keep_empty else {k: v for k, v in cells.items() if v["reported"]}

    reported = len(people)
    repatriated = sum(person[3] for person in people)
    via = Counter(person[4] for person in people if person[3])
    series = []
    value_reported = value_repatriated = 0
    for number, step in enumerate(monthly_steps):
        value_reported = max(0, value_reported + step)
        value_repatriated = max(0, min(value_reported, value_repatriated + step // 3))
        series.append({"month": f"2024-{number + 1:02d}", "reported": value_reported, "repatriated": value_repatriated})
    series.append({"month": "2024-12", "reported": reported, "repatriated": repatriated})
    return {
        "as_of": "2024-12-31",
        "published": False,
        "min_cell": None,
        "totals": {"reported": reported, "repatriated": repatriated, "outstanding": reported - repatriated},
        "by_oblast": breakdown(0, OBLASTS, keep_empty=False),
        "by_sex": breakdown(1, ("F", "M", "U"), keep_empty=True),
        "by_age_band": breakdown(2, BANDS, keep_empty=True),
        "by_via": {key: via.get(key, 0) for key in (*VIAS, "unattributed")},
        "monthly": series,
        "median_days_to_return": 120.0 if repatriated else None,
    }


def compositions(total: int, lows: list[int]) -> Iterator[tuple[int, ...]]:
    """Every vector with entries >= lows that adds up to total."""
    if not lows:
        if total == 0:
            yield ()
        return
    first, rest = lows[0], lows[1:]
    for value in range(first, total - sum(rest) + 1):
        for tail in compositions(total - value, rest):
            yield (value, *tail)


def possible_values(published, name):
    """For each hidden cell of a two-measure breakdown, every value it takes in a table that agrees with it."""
    cells = published[name]
    total_reported, total_repatriated = published["totals"]["reported"], published["totals"]["repatriated"]
    hidden_reported = [key for key, cell in cells.items() if cell["reported"] is None]
    hidden_repatriated = [key for key, cell in cells.items() if cell["repatriated"] is None]
    lows = [max(1, cells[key]["repatriated"] or 1) for key in hidden_reported]
    options: dict[tuple[str, str], set[int]] = {(key, "reported"): set() for key in hidden_reported}
    options.update({(key, "repatriated"): set() for key in hidden_repatriated})
    unbounded = 10**6
    if total_reported is None:
        # No total: a hidden reported cell can be anything from its lower bound up.
        candidates: Iterator[tuple[int, ...]] = iter([tuple(low + 1 for low in lows)])
        for key, low in zip(hidden_reported, lows, strict=True):
            options[key, "reported"] |= {low, low + 1}
    else:
        shown = sum(cell["reported"] for cell in cells.values() if cell["reported"] is not None)
        candidates = compositions(total_reported - shown, lows)
    for vector in candidates:
        reported = {key: cell["reported"] for key, cell in cells.items()}
        reported.update(zip(hidden_reported, vector, strict=True))
        if total_reported is None:
            reported.update(dict.fromkeys(hidden_reported, unbounded))
        highs = {key: reported[key] for key in hidden_repatriated}
        if total_repatriated is None:
            ranges = {key: (1, highs[key]) for key in hidden_repatriated}
        else:
            rest = total_repatriated - sum(c["repatriated"] for c in cells.values() if c["repatriated"] is not None)
            count = len(hidden_repatriated)
            if not count <= rest <= sum(highs.values()):
                continue  # no repatriated column fits this reported column
            ranges = {
                key: (
                    max(1, rest - sum(highs[o] for o in hidden_repatriated if o != key)),
                    min(highs[key], rest - count + 1),
                )
                for key in hidden_repatriated
            }
        if any(low > high for low, high in ranges.values()):
            continue
        if total_reported is not None:
            for key, value in zip(hidden_reported, vector, strict=True):
                options[key, "reported"].add(value)
        for key, (low, high) in ranges.items():
            options[key, "repatriated"] |= set(range(low, min(high, low + 100) + 1))
    return options


@settings(max_examples=400, deadline=None)
@given(children, steps, st.sampled_from([2, 3, 5]))
def test_published_figures_never_show_a_cell_between_1_and_k_minus_1(people, monthly_steps, k):
    published = publish(exact_figures(people, monthly_steps), k=k)

    def small(value):
        return value is not None and 0 < value < k

    for name in ("by_oblast", "by_sex", "by_age_band"):
        assert not any(small(value) for cell in published[name].values() for value in cell.values()), name
    assert not any(small(value) for value in published["by_via"].values())
    assert not small(published["totals"]["reported"]) and not small(published["totals"]["repatriated"])
    assert not any(small(month[key]) for month in published["monthly"] for key in ("reported", "repatriated"))
    if published["median_days_to_return"] is not None:
        assert published["totals"]["repatriated"] >= k


@settings(max_examples=400, deadline=None)
@given(children, steps, st.sampled_from([2, 3, 5]))
def test_no_hidden_cell_can_be_worked_out_from_the_totals_and_the_shown_cells(people, monthly_steps, k):
    exact = exact_figures(people, monthly_steps)
    published = publish(exact, k=k)
    for name in ("by_oblast", "by_sex", "by_age_band"):
        for (key, measure), values in possible_values(published, name).items():
            assert exact[name][key][measure] >= 1, "a zero was hidden: the attacker's lower bound would be wrong"
            if published["totals"][measure] is not None:  # without a total the attacker has no sum to solve
                assert exact[name][key][measure] in values, (name, key, measure)
            assert len(values) >= 2, f"{name} {key} {measure} can only be {values}: {published[name]}"

    hidden_via = [key for key, value in published["by_via"].items() if value is None]
    total = published["totals"]["repatriated"]
    if hidden_via and total is not None:
        rest = total - sum(value for value in published["by_via"].values() if value is not None)
        for index, key in enumerate(hidden_via):
            values = {vector[index] for vector in compositions(rest, [1] * len(hidden_via))}
            assert len(values) >= 2, f"by_via {key} can only be {values}: {published['by_via']}"

    # Between two shown months (or 0 before the first), the net change is 0 or at least k.
    for measure in ("reported", "repatriated"):
        shown = [0] + [month[measure] for month in published["monthly"] if month[measure] is not None]
        assert all(a == b or abs(a - b) >= k for a, b in itertools.pairwise(shown)), (measure, shown)
        last_shown = published["monthly"][-1][measure] is not None
        assert last_shown == (published["totals"][measure] is not None)
