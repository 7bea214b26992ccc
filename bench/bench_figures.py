"""Benchmark: the full figures (totals, every breakdown, the monthly series, the median) at three sizes.

Each size is one organisation's cases in the bench database, computed with
``compute_figures(organisation_id=...)``, the function the snapshot task and
``manage.py figures`` use, so the sizes can sit side by side in one database:

    bench-10k     10,000 cases     filled here with generate_cases if short
    bench-100k    100,000 cases    filled here with generate_cases if short
    bench-large   1,000,000 cases  made by bench_generate (filled here if missing)

Before measuring, the two tables are vacuumed: the local PostgreSQL runs
with autovacuum off, and other benchmarks delete and rewrite rows, so the
tables would otherwise be read with their dead rows (up to twice their size),
which a production database, with autovacuum on, does not do.

Reported per size: the time (the best of three runs after one to warm the
cache, as timeit does: on a shared machine the others only add noise; every
run is printed), the peak of Python memory during a run (tracemalloc) and
the number of queries, which must not grow with the number of cases. Targets (the
issue): 1,000,000 cases with about 3.5 million status changes in under 3 s
and 300 MB.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
import tracemalloc

from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Organisation
from bench.common import Row, peak_rss_mb
from casework.models import Case, StatusChange
from reports.figures import compute_figures, compute_figures_by_organisation, consistent_read

SIZES: tuple[tuple[str, int], ...] = (("bench-10k", 10_000), ("bench-100k", 100_000), ("bench-large", 1_000_000))
TARGET_SECONDS = 3.0
TARGET_MB = 300
RUNS = 3


def _ensure(slug: str, size: int) -> Organisation:
    organisation = Organisation.objects.filter(slug=slug).first()
    have = Case.objects.filter(organisation=organisation).count() if organisation else 0
    if have < size:
        print(f"   generating {size - have:,} cases for {slug} ...", file=sys.stderr, flush=True)
        call_command(
            "generate_cases", "--cases", str(size - have), "--organisation", slug, "--no-progress", verbosity=0
        )
        organisation = Organisation.objects.get(slug=slug)
    assert organisation is not None
    return organisation


def _measure(organisation_id: int | None, as_of: dt.date) -> tuple[list[float], float, int]:
    """Seconds of each timed run, peak Python memory (MB) of one run, queries of one run."""
    with consistent_read():
        compute_figures(as_of=as_of, organisation_id=organisation_id)  # warm the cache
    seconds = []
    for _run in range(RUNS):
        with consistent_read():
            started = time.perf_counter()
            compute_figures(as_of=as_of, organisation_id=organisation_id)
            seconds.append(time.perf_counter() - started)
    tracemalloc.start()
    with consistent_read(), CaptureQueriesContext(connection) as queries:
        compute_figures(as_of=as_of, organisation_id=organisation_id)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Less the statements consistent_read sends to open the transaction.
    figures_queries = [q for q in queries.captured_queries if not q["sql"].startswith("SET ")]
    return seconds, peak / 2**20, len(figures_queries)


def _vacuum() -> None:
    if connection.vendor != "postgresql":
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for model in (Case, StatusChange):
            cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")
    print(f"   vacuumed the case tables in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def run() -> list[Row]:
    as_of = dt.date.today()
    rows: list[Row] = []
    organisations = [(_ensure(slug, size), size) for slug, size in SIZES]
    _vacuum()
    for organisation, size in organisations:
        cases = Case.objects.filter(organisation=organisation).count()
        changes = StatusChange.objects.filter(case__organisation=organisation).count()
        seconds, peak_mb, queries = _measure(organisation.pk, as_of)
        best = min(seconds)
        is_target = size == 1_000_000
        rows.append(
            Row(
                "figures: full computation (one organisation)",
                f"{cases:,} cases + {changes:,} status changes",
                f"{best:.2f} s (runs {', '.join(f'{s:.2f}' for s in seconds)}); "
                f"{queries} queries; Python peak {peak_mb:.1f} MB",
                target=f"< {TARGET_SECONDS:.0f} s, < {TARGET_MB} MB, queries constant" if is_target else "",
                ok=(best < TARGET_SECONDS and peak_mb < TARGET_MB) if is_target else None,
            )
        )
    counts = [row.figure.split("; ")[1] for row in rows]
    rows.append(
        Row(
            "figures: queries at every size",
            " / ".join(f"{size:,}" for _slug, size in SIZES),
            " / ".join(counts),
            target="the same at every size",
            ok=len(set(counts)) == 1,
        )
    )

    # What a snapshot does every night: every organisation's figures and the register's, in one pass.
    total_cases = Case.objects.count()
    with consistent_read():
        started = time.perf_counter()
        _everyone, by_organisation = compute_figures_by_organisation(as_of=as_of)
        elapsed = time.perf_counter() - started
    rows.append(
        Row(
            "figures: snapshot (all cases, split by organisation)",
            f"{total_cases:,} cases, {len(by_organisation)} organisations",
            f"{elapsed:.2f} s; process peak RSS {peak_rss_mb():.0f} MB",
        )
    )
    return rows
