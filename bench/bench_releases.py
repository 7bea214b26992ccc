"""Benchmark: preparing a release of the whole register (1,000,000 cases and more), next to a floor.

A release reads the register once in one transaction (the exact figures of
every organisation and the series a release protects), protects the cells
(OpenDP's discrete Gaussian and the post-processing) and writes the snapshot
and the release. Measured through the command line's door
(``release_figures_from_command``), the best of two runs. A release is
immutable and numbered, so each is erased after its run, as the tables'
owner past the release trigger (the bench database has one role, which owns
the tables: the Makefile sets no MIGRATION_DATABASE_URL), and the bench can
run again.

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
from reports.models import Release, ReleaseApproval, Snapshot

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


def _erase(release: Release) -> None:
    """Drop a benchmark's release, its approval and its snapshot (the owner's switch of the release trigger)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT set_config('register.retention', 'on', true)")
        cursor.execute(f"DELETE FROM {ReleaseApproval._meta.db_table} WHERE release_id = %s", [release.pk])
        cursor.execute(f"DELETE FROM {Release._meta.db_table} WHERE id = %s", [release.pk])
        cursor.execute(f"DELETE FROM {Snapshot._meta.db_table} WHERE id = %s", [release.snapshot_id])


def _prepare_once(as_of: dt.date) -> tuple[float, float]:
    """Seconds to prepare and approve a release as of ``as_of`` (then erased), and seconds of its protection."""
    started = time.perf_counter()
    release, _made = releases.release_figures_from_command(as_of=as_of, note="Benchmark (erased after the run).")
    elapsed = time.perf_counter() - started
    try:
        snapshot = release.snapshot
        assert snapshot.exact is not None and snapshot.series is not None
        layout = releases.release_layout(as_of)
        protect_started = time.perf_counter()
        protection.protect(snapshot.exact, snapshot.series, layout=layout, rho=release.rho, k=release.min_cell)
        protect_seconds = time.perf_counter() - protect_started
    finally:
        _erase(release)
    return elapsed, protect_seconds


def run() -> list[Row]:
    _ensure("bench-large", SIZE)
    _vacuum()
    cases, changes = Case.objects.count(), StatusChange.objects.count()
    as_of = dt.date.today()
    if Release.objects.exists():
        return [Row("releases: prepare and approve a release", "-", "skipped: the bench database holds releases")]
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
