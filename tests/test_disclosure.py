"""Published figures: primary and complementary suppression, totals, the monthly series, the median."""

from __future__ import annotations

import copy

import pytest

from reports.disclosure import _shown_months, describe_hidden, publish


def make_figures(*, oblasts=None, via=None, monthly=None, median=100.0):
    oblasts = oblasts or {"UA-14": (100, 20), "UA-43": (50, 10)}
    reported = sum(r for r, _p in oblasts.values())
    repatriated = sum(p for _r, p in oblasts.values())
    via = via if via is not None else {"qatar": repatriated, "unattributed": 0}
    assert sum(via.values()) == repatriated
    return {
        "as_of": "2025-02-02",
        "published": False,
        "min_cell": None,
        "totals": {"reported": reported, "repatriated": repatriated, "outstanding": reported - repatriated},
        "by_oblast": {key: {"reported": r, "repatriated": p} for key, (r, p) in oblasts.items()},
        "by_sex": {"F": {"reported": reported, "repatriated": repatriated}, "M": {"reported": 0, "repatriated": 0}},
        "by_age_band": {"unknown": {"reported": reported, "repatriated": repatriated}},
        "by_via": via,
        "monthly": monthly
        if monthly is not None
        else [{"month": "2025-02", "reported": reported, "repatriated": repatriated}],
        "median_days_to_return": median,
    }


def test_it_marks_the_result_published_with_k_and_leaves_the_exact_figures_alone():
    exact = make_figures()
    before = copy.deepcopy(exact)
    published = publish(exact, k=5)
    assert exact == before
    assert published["published"] is True and published["min_cell"] == 5
    assert published["totals"] == exact["totals"]
    assert published["by_oblast"] == exact["by_oblast"]


def test_it_hides_a_small_cell_and_the_next_smallest_with_it():
    exact = make_figures(oblasts={"UA-14": (100, 20), "UA-43": (3, 0), "UA-65": (40, 10), "UA-09": (60, 10)})
    published = publish(exact, k=5)
    reported = {key: cell["reported"] for key, cell in published["by_oblast"].items()}
    # UA-43 (3) is below k; UA-65 (40, the smallest other) goes with it, so that neither can be worked out.
    assert reported == {"UA-14": 100, "UA-43": None, "UA-65": None, "UA-09": 60}
    assert published["by_oblast"]["UA-43"]["repatriated"] == 0  # zeros are shown


def test_it_adds_cells_until_the_hidden_ones_add_up_to_k():
    exact = make_figures(
        oblasts={"UA-14": (100, 0), "UA-43": (1, 0), "UA-65": (1, 0), "UA-09": (2, 0), "UA-05": (9, 0)}
    )
    published = publish(exact, k=5)
    hidden = {key for key, cell in published["by_oblast"].items() if cell["reported"] is None}
    assert hidden == {"UA-43", "UA-65", "UA-09", "UA-05"}  # 1 + 1 + 2 = 4 < 5, so 9 goes too


def test_it_hides_a_reported_cell_that_only_its_returns_would_give_away():
    # Hidden reported cells {UA-43: 1, UA-65: 6}: with UA-65's 6 returns shown, 6 + 1 = 7 would pin both.
    exact = make_figures(oblasts={"UA-14": (100, 20), "UA-43": (1, 0), "UA-65": (6, 6), "UA-09": (30, 5)})
    published = publish(exact, k=5)
    hidden = {key for key, cell in published["by_oblast"].items() if cell["reported"] is None}
    assert hidden == {"UA-43", "UA-65", "UA-09"}


def test_it_hides_every_cell_of_a_total_below_k():
    exact = make_figures(oblasts={"UA-14": (100, 3), "UA-43": (50, 0)}, via={"qatar": 3, "unattributed": 0})
    published = publish(exact, k=5)
    assert published["totals"] == {"reported": 150, "repatriated": None, "outstanding": None}
    assert published["by_oblast"]["UA-14"]["repatriated"] is None
    assert published["by_oblast"]["UA-43"]["repatriated"] == 0
    assert published["by_via"] == {"qatar": None, "unattributed": 0}
    assert published["median_days_to_return"] is None
    assert published["monthly"][-1]["repatriated"] is None


def test_it_hides_the_total_when_no_choice_of_cells_protects_the_column():
    # Five intermediaries with one return each: the total (5) would give every one of them away.
    via = {"a": 1, "b": 1, "c": 1, "d": 1, "unattributed": 1}
    exact = make_figures(oblasts={"UA-14": (100, 5), "UA-43": (50, 0)}, via=via)
    published = publish(exact, k=5)
    assert published["totals"]["repatriated"] is None
    assert set(published["by_via"].values()) == {None}
    assert published["by_oblast"]["UA-14"]["repatriated"] is None


def test_it_shows_the_median_only_behind_k_returns():
    assert (
        publish(make_figures(oblasts={"UA-14": (100, 4), "UA-43": (50, 0)}, via={"q": 4}), k=5)["median_days_to_return"]
        is None
    )
    assert publish(make_figures(), k=5)["median_days_to_return"] == 100.0


def test_it_refuses_a_k_below_2():
    with pytest.raises(ValueError):
        publish(make_figures(), k=1)


@pytest.mark.parametrize(
    ("values", "k", "shown"),
    [
        # 100 then 101: a change of one child in a month is not shown.
        ([100, 101, 110, 110], 5, [True, False, True, True]),
        # The last value is the (shown) total: earlier values give way until its step is large enough.
        ([10, 20, 23], 5, [True, False, True]),
        ([0, 0, 3, 6], 5, [True, True, False, True]),
        # A cumulative value below k is never shown; and 12 then 9 would show a fall of 3, so 12 goes.
        ([12, 3, 9], 5, [False, False, True]),
        ([12, 3, 20], 5, [True, False, True]),
        ([], 5, []),
    ],
)
def test_it_shows_months_whose_change_is_zero_or_at_least_k(values, k, shown):
    assert _shown_months(values, k=k, last_shown=True) == shown


def test_it_hides_the_last_month_when_its_total_is_hidden():
    assert _shown_months([0, 3], k=5, last_shown=False) == [True, False]


def test_it_nulls_hidden_months_in_the_published_series():
    monthly = [
        {"month": "2024-12", "reported": 100, "repatriated": 5},
        {"month": "2025-01", "reported": 101, "repatriated": 6},
        {"month": "2025-02", "reported": 150, "repatriated": 30},
    ]
    published = publish(make_figures(monthly=monthly), k=5)
    assert published["monthly"] == [
        {"month": "2024-12", "reported": 100, "repatriated": 5},
        {"month": "2025-01", "reported": None, "repatriated": None},
        {"month": "2025-02", "reported": 150, "repatriated": 30},
    ]
    assert describe_hidden(published) == {"cells": 0, "months": 2}
