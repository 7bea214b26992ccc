"""Attacks on a year of weekly releases made from a generated register (DESIGN section 10, issue 12).

The register: two organisations' synthetic cases with histories from the demo's
generator (devdata.scale), so children are reported, returned, corrected and
withdrawn week after week. Releases are made through the release service every
7 days for a year (FIGURES_RELEASE_MIN_DAYS = 7, the fastest cadence allowed,
where each release gets the least privacy loss and so the most noise is the
*least* safe setting for the reader of many releases: they hold 53 of them).

The attacker holds every release and is an insider: they know their own
organisation's exact figures on every date. Against them:

* the differencing attack of the issue: between two releases (consecutive or
  not) in which exactly one child of the other organisation came home, the
  cells that moved must not name that child's oblast, sex, age band or
  intermediary better than a guess that ignores the difference;
* no difference of a cell between two releases, and no cell minus the
  insider's own, pins a count of 1 to k-1: the attacker's best reading of it
  is wrong far more often than right;
* an integer-programming attack on every release together (exact totals, every
  published cell, the noise bounded by the largest error actually made, the
  number of children who moved between releases): every cell whose true count
  is 1 to k-1 keeps more than one possible value.

The same attacks on the exact figures succeed (the tests check that too), so
a failure here is the protection failing, not the attack. For statistical
power the attacks also run on 20 fresh draws of the noise of every release
(the mechanism's own randomness), next to the series the service made.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter, defaultdict
from typing import Any, ClassVar

import numpy as np
from django.test import TestCase, override_settings
from scipy.optimize import Bounds, LinearConstraint, milp

from casework.models import AGE_BANDS as CASE_AGE_BANDS
from casework.models import RETURNED_STATUSES, SIDE_STATUSES, Case, StatusChange
from devdata.scale import generate_cases
from reports import protection, releases, selectors
from reports.figures import UNATTRIBUTED
from reports.models import Release
from tests.conftest import ensure_intermediaries
from tests.test_figures_definitions import _return_event, _status_on

K = 5
FIRST = dt.date(2024, 1, 5)
WEEKS = 53
DRAWS = 20
BREAKDOWNS = ("by_oblast", "by_sex", "by_age_band", "by_via")


def _band(case: Case) -> str:
    if case.birth_year is None:
        return "unknown"
    age = case.reported_on.year - case.birth_year
    for low, high, key in CASE_AGE_BANDS:
        if low <= age and (high is None or age <= high):
            return key
    return "unknown"  # pragma: no cover


def _truth(dates: list[dt.date]) -> list[dict[int, dict[str, Any]]]:
    """For each date: every case in repatriated(D), with its organisation and the keys of its cells."""
    cases = {case.pk: case for case in Case.objects.select_related("organisation")}
    histories: dict[int, list[StatusChange]] = defaultdict(list)
    for change in StatusChange.objects.select_related("via"):
        histories[change.case_id].append(change)
    result = []
    for day in dates:
        home: dict[int, dict[str, Any]] = {}
        for pk, case in cases.items():
            if case.reported_on > day:
                continue
            status = _status_on(histories[pk], day)
            if status in SIDE_STATUSES or status not in RETURNED_STATUSES:
                continue
            event = _return_event(histories[pk], day)
            assert event is not None
            home[pk] = {
                "organisation": case.organisation.slug,
                "by_oblast": case.oblast,
                "by_sex": case.sex,
                "by_age_band": _band(case),
                "by_via": event.via.slug if event.via else UNATTRIBUTED,
            }
        result.append(home)
    return result


def _repatriated(figures: dict[str, Any], name: str) -> dict[str, int | None]:
    """The repatriated cells of a breakdown, every key of the release layout (exact figures leave out empty
    oblasts: 0). None is a protected value shown as "fewer than k"."""
    cells = figures[name] if name == "by_via" else {key: cell["repatriated"] for key, cell in figures[name].items()}
    return {key: cells.get(key, 0) for key in LAYOUT_KEYS[name]} if LAYOUT_KEYS else dict(cells)


LAYOUT_KEYS: dict[str, list[str]] = {}


def _normal_cdf(value: float) -> float:
    return 0.5 * (1 + math.erf(value / math.sqrt(2)))


def _value(value: int | None) -> float:
    """A reader's value for a cell shown as "fewer than k": the middle of 0..k-1."""
    return (K - 1) / 2 if value is None else float(value)


@override_settings(FIGURES_RELEASE_MIN_DAYS=7, FIGURES_RELEASE_APPROVERS=1)
class AYearOfWeeklyReleases(TestCase):
    """One register, 53 weekly releases through the service; the attacks read them (and fresh draws)."""

    dates: ClassVar[list[dt.date]]
    series: ClassVar[list[list[dict[str, Any]]]]  # series[draw][week]: published figures
    exact: ClassVar[list[dict[str, Any]]]  # exact register-wide figures by week
    own: ClassVar[list[dict[str, Any]]]  # the insider's organisation's exact figures by week
    truth: ClassVar[list[dict[int, dict[str, Any]]]]
    sigma: ClassVar[float]

    @classmethod
    def setUpTestData(cls) -> None:
        ensure_intermediaries()
        generate_cases(cases=330, organisation_slug="insider-ngo", seed=12)
        generate_cases(cases=220, organisation_slug="other-ngo", seed=34)
        cls.dates = [FIRST + dt.timedelta(days=7 * week) for week in range(WEEKS)]
        made = []
        for day in cls.dates:
            made.append(releases.release_figures_from_command(as_of=day)[0])
        insider = "insider-ngo"
        from accounts.models import Organisation

        insider_id = str(Organisation.objects.get(slug=insider).pk)
        cls.exact = [release.snapshot.exact for release in made]
        cls.own = [release.snapshot.by_organisation[insider_id] for release in made]
        cls.sigma = made[0].sigma
        rho = made[0].rho
        cls.series = [[release.figures for release in made]]
        for _draw in range(DRAWS - 1):
            cls.series.append(
                [
                    protection.protect(
                        release.snapshot.exact,
                        release.snapshot.series,
                        layout=releases.release_layout(release.as_of),
                        rho=rho,
                        k=K,
                    ).figures
                    for release in made
                ]
            )
        cls.truth = _truth(cls.dates)
        first = made[0].figures
        LAYOUT_KEYS.update({name: list(first[name]) for name in BREAKDOWNS})

    # --- the releases themselves ------------------------------------------------------------

    def test_a_year_of_weekly_releases_fits_the_budget_and_the_next_does_not_until_one_ages_out(self) -> None:
        made = list(Release.objects.order_by("number"))
        self.assertEqual([release.number for release in made], list(range(1, WEEKS + 1)))
        self.assertTrue(all(release.state == "approved" for release in made))
        self.assertAlmostEqual(sum(release.rho for release in made), 10.0, places=6)
        # The headline series spend 0.8 of each release's ρ (the lists the rest): σ ≈ 5.76.
        self.assertAlmostEqual(self.sigma, math.sqrt(10 / (2 * 0.8 * 10 / 53)), places=4)
        # One more release in the same 365 days would pass the budget; the first has aged out a year after it.
        self.assertFalse(selectors.release_budget(self.dates[-1], rho=made[0].rho).fits)
        self.assertFalse(selectors.release_budget(FIRST + dt.timedelta(days=364), rho=made[0].rho).fits)
        self.assertTrue(selectors.release_budget(FIRST + dt.timedelta(days=365), rho=made[0].rho).fits)

    def test_the_headline_totals_are_exact_in_every_release(self) -> None:
        for draw in self.series:
            for published, exact in zip(draw, self.exact, strict=True):
                self.assertEqual(published["totals"], exact["totals"])
                self.assertEqual(published["monthly"][-1]["reported"], exact["totals"]["reported"])

    def test_the_register_is_one_where_the_attacks_have_something_to_find(self) -> None:
        moved_by_one = sum(
            1
            for before, after in zip(self.exact, self.exact[1:], strict=False)
            if after["totals"]["repatriated"] - before["totals"]["repatriated"] == 1
        )
        self.assertGreaterEqual(moved_by_one, 5)
        self.assertGreaterEqual(len(self._events()), 40)

    # --- the differencing attack -------------------------------------------------------------

    def _events(self) -> list[tuple[int, int, int]]:
        """(i, j, case): between releases i and j exactly one child of the other organisation came home, and
        none of theirs left. The insider sees the others' total rise by one; the cells must not say where."""
        events = []
        for i in range(WEEKS):
            before = {pk for pk, child in self.truth[i].items() if child["organisation"] == "other-ngo"}
            for j in range(i + 1, WEEKS):
                after = {pk for pk, child in self.truth[j].items() if child["organisation"] == "other-ngo"}
                if before <= after and len(after - before) == 1:
                    events.append((i, j, next(iter(after - before))))
                if len(after - before) > 1 or not before <= after:
                    break
        return events

    def _attack(self, draw: list[dict[str, Any]], name: str, events: list[tuple[int, int, int]]) -> dict[str, float]:
        """Guess the child's key from the moved cells (the insider's own moves taken off)."""
        hits: Counter[str] = Counter()
        sigma2 = self.sigma**2
        for i, j, pk in events:
            true_key = self.truth[j][pk][name]
            before, after = _repatriated(draw[i], name), _repatriated(draw[j], name)
            own_before, own_after = _repatriated(self.own[i], name), _repatriated(self.own[j], name)
            own_before = {key: value or 0 for key, value in own_before.items()}
            own_after = {key: value or 0 for key, value in own_after.items()}
            keys = list(after)
            moved = {key: _value(after[key]) - _value(before[key]) - (own_after[key] - own_before[key]) for key in keys}
            # What the reader would guess without the difference: the largest cell of the others.
            others = {key: max(_value(after[key]) - own_after[key], 0.5) for key in keys}
            prior = {key: value / sum(others.values()) for key, value in others.items()}
            guesses = {
                "baseline": max(keys, key=lambda key: prior[key]),
                "differencing": max(keys, key=lambda key: moved[key]),
                # The Bayes-optimal reader of the difference, knowing σ (published) and the others' sizes.
                "bayes": max(keys, key=lambda key: math.log(prior[key]) + (2 * moved[key] - 1) / (4 * sigma2)),
            }
            for attacker, guess in guesses.items():
                hits[attacker] += guess == true_key
        return {attacker: hits[attacker] / len(events) for attacker in ("baseline", "differencing", "bayes")}

    def test_the_cells_that_moved_do_not_name_the_child_who_came_home(self) -> None:
        """Between two releases, the child's key could be A or B: the difference of the repatriated cells then
        differs by -1 at A and +1 at B, under noise of variance 2σ² per cell (post-processing only loses
        information). No reader's guess can beat the guess without the difference by more than the total
        variation distance of those two worlds, 2Φ(1/(2σ)) - 1 (≈ 0.078 at σ ≈ 5.15): that, and the sampling
        error of the draws, is the ceiling. The same attack on the exact figures names the child every time."""
        events = self._events()
        consecutive = sum(1 for i, j, _pk in events if j == i + 1)
        self.assertGreater(consecutive, 0)
        self.assertGreater(len(events) - consecutive, 0)
        ceiling = 2 * _normal_cdf(1 / (2 * self.sigma)) - 1
        for name in BREAKDOWNS:
            rates: dict[str, list[float]] = defaultdict(list)
            for draw in self.series:
                for attacker, rate in self._attack(draw, name, events).items():
                    rates[attacker].append(rate)
            for attacker in ("differencing", "bayes"):
                gains = [rate - base for rate, base in zip(rates[attacker], rates["baseline"], strict=True)]
                mean = sum(gains) / len(gains)
                spread = math.sqrt(sum((gain - mean) ** 2 for gain in gains) / (len(gains) - 1))
                allowed = ceiling + 4 * spread / math.sqrt(len(gains))
                self.assertLessEqual(mean, allowed, f"{name}, {attacker}: {mean:.3f} better than the guess")
            self.assertEqual(self._attack(self.exact, name, events)["differencing"], 1.0, name)

    def test_no_difference_of_cells_pins_a_count_under_k(self) -> None:
        """Between any two releases, and in any release minus the insider's own cells, a true count of
        1..k-1 is read right (to the child) only by chance."""
        right = total = 0
        exact_right = 0
        for draw in self.series[:5]:
            for i in range(WEEKS):
                for j in [*range(i + 1, min(i + 5, WEEKS)), *([WEEKS - 1] if i < WEEKS - 5 else [])]:
                    for name in BREAKDOWNS:
                        before, after = _repatriated(draw[i], name), _repatriated(draw[j], name)
                        exact_before, exact_after = _repatriated(self.exact[i], name), _repatriated(self.exact[j], name)
                        for key in after:
                            truth = (exact_after.get(key) or 0) - (exact_before.get(key) or 0)
                            if 1 <= truth < K:
                                total += 1
                                right += round(_value(after[key]) - _value(before[key])) == truth
                                exact_right += 1
                for name in BREAKDOWNS:
                    published, exact, own = (
                        _repatriated(draw[i], name),
                        _repatriated(self.exact[i], name),
                        _repatriated(self.own[i], name),
                    )
                    for key in published:
                        truth = (exact.get(key) or 0) - (own.get(key) or 0)  # the other organisation's count
                        if 1 <= truth < K:
                            total += 1
                            right += round(_value(published[key]) - (own.get(key) or 0)) == truth
                            exact_right += 1
        self.assertGreater(total, 500)
        self.assertEqual(exact_right, total)  # on exact figures every one of them is pinned
        self.assertLess(right / total, 0.2, f"{right} of {total} read right")

    # --- the integer-programming attack on every release together -----------------------------

    def _integer_program(
        self, shown: list[list[int | None]], bound: int, true: np.ndarray, targets: list[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        """The smallest and largest value of each target cell over every table (all weeks, all oblasts) that
        agrees with: the exact totals, every shown cell within ``bound`` of the truth (a hidden one in
        0..k-1 before noise), and, between consecutive releases, the number of children who moved in all
        and the largest fall of any cell (which an insider might learn)."""
        n_keys = true.shape[1]
        n_x = WEEKS * n_keys
        n = n_x + (WEEKS - 1) * n_keys

        def x(t: int, i: int) -> int:
            return t * n_keys + i

        def u(t: int, i: int) -> int:
            return n_x + t * n_keys + i  # at least |x(t+1, i) - x(t, i)|

        low, high = np.zeros(n), np.full(n, np.inf)
        for t in range(WEEKS):
            for i in range(n_keys):
                value = shown[t][i]
                low[x(t, i)] = 0 if value is None else max(0, value - bound)
                high[x(t, i)] = (K - 1 + bound) if value is None else value + bound
        rows: list[np.ndarray] = []
        lower: list[float] = []
        upper: list[float] = []

        def constraint(coefficients: dict[int, float], at_least: float, at_most: float) -> None:
            row = np.zeros(n)
            for index, coefficient in coefficients.items():
                row[index] = coefficient
            rows.append(row)
            lower.append(at_least)
            upper.append(at_most)

        for t in range(WEEKS):
            total = self.exact[t]["totals"]["repatriated"]
            constraint({x(t, i): 1 for i in range(n_keys)}, total, total)
        for t in range(WEEKS - 1):
            moves = int(np.abs(true[t + 1] - true[t]).sum())
            falls = int(np.clip(true[t] - true[t + 1], 0, None).max())
            constraint({u(t, i): 1 for i in range(n_keys)}, 0, moves)
            for i in range(n_keys):
                constraint({u(t, i): 1, x(t + 1, i): -1, x(t, i): 1}, 0, np.inf)
                constraint({u(t, i): 1, x(t + 1, i): 1, x(t, i): -1}, 0, np.inf)
                constraint({x(t + 1, i): 1, x(t, i): -1}, -falls, np.inf)
        program = {
            "constraints": LinearConstraint(np.array(rows), np.array(lower), np.array(upper)),
            "integrality": np.ones(n),
            "bounds": Bounds(low, high),
        }
        ranges = []
        for t, i in targets:
            found = []
            for sign in (1, -1):
                objective = np.zeros(n)
                objective[x(t, i)] = sign
                result = milp(objective, **program)
                self.assertTrue(result.success, result.message)
                found.append(round(result.x[x(t, i)]))
            ranges.append((found[0], found[1]))
        return ranges

    def test_an_integer_program_over_every_release_leaves_each_small_cell_more_than_one_value(self) -> None:
        published = self.series[0]  # the releases the service made
        keys = list(_repatriated(published[0], "by_oblast"))
        true = np.array([[_repatriated(self.exact[t], "by_oblast")[key] for key in keys] for t in range(WEEKS)])
        shown = [[_repatriated(published[t], "by_oblast")[key] for key in keys] for t in range(WEEKS)]
        # The tightest noise bound that keeps the truth possible: as if the attacker were told the largest error.
        bound = max(
            abs(value - true[t, i]) if value is not None else max(true[t, i] - (K - 1), 0)
            for t in range(WEEKS)
            for i, value in enumerate(shown[t])
        )
        small = [(t, i) for t in range(WEEKS) for i in range(len(keys)) if 1 <= true[t, i] < K]
        self.assertGreater(len(small), 20)
        targets = random.Random(5).sample(small, 12)
        for (t, i), (lowest, highest) in zip(targets, self._integer_program(shown, bound, true, targets), strict=True):
            self.assertLessEqual(lowest, true[t, i])
            self.assertGreaterEqual(highest, true[t, i])
            self.assertGreater(highest, lowest, f"week {t} {keys[i]}: only {lowest} possible")
        # The same program on exact cells (no noise: bound 0) pins every one of them: the attack is real.
        exact_shown = [[int(value) for value in row] for row in true]
        for (t, i), (lowest, highest) in zip(
            targets, self._integer_program(exact_shown, 0, true, targets), strict=True
        ):
            self.assertEqual((lowest, highest), (true[t, i], true[t, i]))
