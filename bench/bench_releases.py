"""Benchmark: preparing a release of the whole register (1,000,000 cases and more), next to a floor.

A release reads the register once in one transaction (the exact figures of
every organisation and the series a release protects), protects the cells
(OpenDP's discrete Gaussian and the post-processing) and writes the snapshot
and the release. Measured through the command line's door
(``release_figures_from_command``), the best of two runs, each inside a
transaction that is rolled back: a release is immutable and numbered, so the
bench database keeps none and can run again.

The floor, measured in the same run on the same tables: one sequential pass
over the case table and one over the status history (a count and a sum
each), the least any computation over every case must read. The protection
alone is timed too: it does not grow with the number of cases.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

from django.db import connection, transaction

from bench.bench_figures import _ensure, _vacuum
from bench.common import Row, peak_rss_mb
from casework.models import Case, StatusChange
from reports import protection, releases

SIZE = 1_000_000
RUNS = 2


def _floor() -> float:
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(f"SELECT COUNT(*), SUM(birth_year) FROM {Case._meta.db_table}")
        cursor.fetchone()
        cursor.execute(f"SELECT COUNT(*), SUM(version) FROM {StatusChange._meta.db_table}")
        cursor.fetchone()
        return time.perf_counter() - started


class _RolledBack(Exception):
    pass


def _prepare_once(as_of: dt.date) -> tuple[float, float]:
    """Seconds to prepare and approve a release as of ``as_of`` (rolled back), and seconds of its protection."""
    started = time.perf_counter()
    protect_seconds = 0.0
    try:
        with transaction.atomic():
            release, _made = releases.release_figures_from_command(as_of=as_of, note="Benchmark (rolled back).")
            elapsed = time.perf_counter() - started
            snapshot = release.snapshot
            assert snapshot.exact is not None and snapshot.series is not None
            layout = releases.release_layout(as_of)
            protect_started = time.perf_counter()
            protection.protect(snapshot.exact, snapshot.series, layout=layout, rho=release.rho, k=release.min_cell)
            protect_seconds = time.perf_counter() - protect_started
            raise _RolledBack
    except _RolledBack:
        pass
    return elapsed, protect_seconds


def run() -> list[Row]:
    _ensure("bench-large", SIZE)
    _vacuum()
    cases, changes = Case.objects.count(), StatusChange.objects.count()
    as_of = dt.date.today()
    floors = [_floor() for _run in range(RUNS + 1)][1:]  # the first warms the cache
    print(f"   preparing a release of {cases:,} cases ...", file=sys.stderr, flush=True)
    measured = [_prepare_once(as_of) for _run in range(RUNS)]
    seconds = [elapsed for elapsed, _protect in measured]
    best, floor = min(seconds), min(floors)
    return [
        Row(
            "releases: prepare and approve a release (the whole register)",
            f"{cases:,} cases + {changes:,} status changes",
            f"{best:.2f} s (runs {', '.join(f'{s:.2f}' for s in seconds)}); floor {floor:.2f} s "
            f"(one pass over both tables), {best / floor:.1f}x the floor; of which protection "
            f"{min(p for _e, p in measured) * 1000:.0f} ms; process peak RSS {peak_rss_mb():.0f} MB",
        )
    ]
