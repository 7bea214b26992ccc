"""Generating a million synthetic cases with ``generate_cases`` (COPY on PostgreSQL).

The cases go to the organisation ``bench-large``, which later benchmarks
reuse. When it already holds a million cases nothing is generated, and the
timing recorded when they were is reported, marked "(cached)".
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from django.db import connection
from tqdm import tqdm

from bench.common import Row, peak_rss_mb
from casework.models import Case
from devdata.scale import generate_cases

ORGANISATION = "bench-large"
SIZE = 1_000_000
TARGET_SECONDS = 180.0
TARGET = f"< {TARGET_SECONDS:.0f} s"
SEED = 2025
TIMINGS = Path(__file__).resolve().parent / "out" / "generate.json"


def _database() -> str:
    settings = connection.settings_dict
    return f"{connection.vendor}:{settings.get('HOST') or ''}/{settings['NAME']}"


def _earlier_timing() -> dict[str, float] | None:
    try:
        recorded = json.loads(TIMINGS.read_text())
    except (OSError, ValueError):
        return None
    # A timing from another database says nothing about the cases in this one.
    return recorded if recorded.get("database") == _database() else None


def _record_timing(timing: dict[str, object]) -> None:
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    TIMINGS.write_text(json.dumps({**timing, "database": _database()}, indent=2))


def _rows(size: str, seconds: float, cases: int, changes: int, note: str = "") -> list[Row]:
    return [
        Row("generate_cases: time", size, f"{seconds:.1f} s{note}", TARGET, seconds < TARGET_SECONDS),
        Row("generate_cases: rate", size, f"{cases / seconds:,.0f} cases/s, {changes / seconds:,.0f} changes/s{note}"),
    ]


def run() -> list[Row]:
    existing = Case.objects.filter(organisation__slug=ORGANISATION).count()
    if existing >= SIZE:
        earlier = _earlier_timing()
        size = f"{existing:,} cases in {ORGANISATION}"
        if earlier is None:
            return [Row("generate_cases: time", size, "(cached) no earlier timing recorded", TARGET)]
        return _rows(size, earlier["seconds"], int(earlier["cases"]), int(earlier["changes"]), " (cached)")

    count = SIZE - existing
    show = sys.stderr.isatty()
    started = time.perf_counter()
    with tqdm(total=count, unit="case", unit_scale=True, file=sys.stderr, disable=not show) as bar:
        result = generate_cases(cases=count, organisation_slug=ORGANISATION, seed=SEED, progress=bar.update)
    seconds = time.perf_counter() - started
    _record_timing({"seconds": seconds, "cases": result.cases, "changes": result.changes, "method": result.method})
    size = f"{result.cases:,} cases, {result.changes:,} changes ({result.method})"
    return [
        *_rows(size, seconds, result.cases, result.changes),
        Row("generate_cases: memory", size, f"peak RSS {peak_rss_mb():.0f} MB (bench process)"),
    ]
