"""Benchmark: ``import_cases`` (plan + apply) of a synthetic 20,000-case file with ~2 status changes per case.

Everything here is invented: references are ``BENCH-<n>``, there are no names.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.db import connection, transaction

from accounts.models import Organisation
from bench.common import Row, peak_rss_mb
from casework.importing import apply_import, plan_import
from casework.models import Case, Institution, Oblast, Placement, Sex, Source

CASES = 20_000
TARGET_RATE = 10_000  # cases per second
ROOT = Path(__file__).resolve().parent.parent
SLUG = "bench-import"
INSTITUTIONS = ("bench-import-01", "bench-import-02", "bench-import-03")


def _organisation() -> Organisation:
    organisation, _created = Organisation.objects.get_or_create(
        slug=SLUG, defaults={"name": "Benchmark import (synthetic)", "kind": Organisation.Kind.NGO}
    )
    for code in INSTITUTIONS:
        Institution.objects.get_or_create(
            code=code, defaults={"name": f"Synthetic {code}", "region": "UA-43", "kind": Institution.Kind.ORPHANAGE}
        )
    return organisation


def _clear(organisation: Organisation) -> None:
    """Remove the previous run's cases and every row pointing at them.

    History is append-only: its querysets refuse delete(), and on PostgreSQL a trigger refuses DELETE unless
    the transaction sets ``register.retention`` (as the retention task does). This benchmark's own synthetic
    rows are the only ones removed.
    """
    case_table = Case._meta.db_table
    cases = f"SELECT id FROM {case_table} WHERE organisation_id = %s"
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT set_config('register.retention', 'on', true)")
        for relation in Case._meta.related_objects:
            table, column = relation.related_model._meta.db_table, relation.field.column
            cursor.execute(f"DELETE FROM {table} WHERE {column} IN ({cases})", [organisation.pk])
        cursor.execute(f"DELETE FROM {case_table} WHERE organisation_id = %s", [organisation.pk])


def _write_files(directory: Path, *, today: dt.date) -> tuple[Path, Path, int]:
    rng = random.Random(20250101)
    first_day = dt.date(2022, 3, 1)
    span = (today - dt.timedelta(days=200) - first_day).days
    cases_path, events_path = directory / "cases.csv", directory / "events.csv"
    first_events: list[list[str]] = []
    later_events: list[list[str]] = []
    with cases_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source_ref", "sex", "birth_year", "oblast", "reported_on", "displaced_on", "placement",
                         "institution", "source"])  # fmt: skip
        for n in range(CASES):
            reported_on = first_day + dt.timedelta(days=rng.randrange(span))
            displaced = reported_on - dt.timedelta(days=rng.randrange(30, 400))
            displaced_on = rng.choice(["", displaced.strftime("%Y-%m"), displaced.isoformat()])
            writer.writerow([
                f"BENCH-{n:06d}",
                rng.choice(Sex.values),
                rng.choice(["", str(rng.randrange(2006, 2020))]),
                rng.choice(Oblast.values),
                reported_on.isoformat(),
                displaced_on if displaced_on and displaced >= first_day - dt.timedelta(days=365 * 3) else "",
                rng.choice(["", *Placement.values]),
                rng.choice(["", "", "", *INSTITUTIONS]),
                rng.choice(["", *Source.values]),
            ])  # fmt: skip
            verified = reported_on + dt.timedelta(days=rng.randrange(1, 60))
            first_events.append([f"BENCH-{n:06d}", "verified", verified.isoformat(), "", "", ""])
            second = verified + dt.timedelta(days=rng.randrange(1, 120))
            roll = rng.random()
            if roll < 0.6:
                later_events.append([f"BENCH-{n:06d}", "located", second.isoformat(), "", "", ""])
            elif roll < 0.8:
                later_events.append([f"BENCH-{n:06d}", "return_requested", second.isoformat(), "qatar", "", ""])
            elif roll < 0.9:
                later_events.append([f"BENCH-{n:06d}", "repatriated", second.isoformat(), "vatican", "", ""])
            elif roll < 0.95 or n == 0:
                note = "Report found to be mistaken by the regional office."
                later_events.append([f"BENCH-{n:06d}", "withdrawn", second.isoformat(), "", "", note])
            else:
                survivor = f"BENCH-{rng.randrange(n):06d}"
                later_events.append([f"BENCH-{n:06d}", "duplicate", second.isoformat(), "", survivor, ""])
    # Survivors must not be duplicates themselves: the duplicates point at earlier cases, so drop any chain.
    duplicates = {row[0] for row in later_events if row[1] == "duplicate"}
    later_events = [row for row in later_events if row[1] != "duplicate" or row[4] not in duplicates]
    with events_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source_ref", "status", "occurred_on", "via", "duplicate_of", "note"])
        writer.writerows(first_events)
        writer.writerows(later_events)
    return cases_path, events_path, len(first_events) + len(later_events)


def _measure(label: str) -> list[Row]:
    organisation = _organisation()
    _clear(organisation)
    others = Case.objects.exclude(organisation=organisation).count()
    today = dt.date.today()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as directory:
        cases_path, events_path, event_count = _write_files(Path(directory), today=today)
        started = time.perf_counter()
        plan = plan_import(cases_file=cases_path, events_file=events_path, organisation=organisation, today=today)
        planned = time.perf_counter()
        result = apply_import(plan)
        finished = time.perf_counter()
    assert result.cases == CASES and result.events == event_count, result
    total = finished - started
    rate = CASES / total
    size = f"{CASES:,} cases + {event_count:,} changes, {others:,} cases already"
    return [
        Row(
            f"import_cases: plan + apply ({label})",
            size,
            f"{rate:,.0f} cases/s ({total:.2f} s)",
            target=f">= {TARGET_RATE:,} cases/s" if label == ISOLATED else "",
            ok=rate >= TARGET_RATE if label == ISOLATED else None,
        ),
        Row(f"import_cases: plan (read, check) ({label})", size, f"{planned - started:.2f} s"),
        Row(
            f"import_cases: apply (write) ({label})",
            size,
            f"{finished - planned:.2f} s; peak RSS {peak_rss_mb():.0f} MB",
        ),
    ]


ISOLATED = "own database"
SHARED = "beside 1M cases"


def _isolated() -> list[Row]:
    """Run the import in a database of its own: an NGO's register, not the 1M-case benchmark data."""
    url = os.environ["DATABASE_URL"]
    env = {**os.environ, "DATABASE_URL": f"{url}_import", "BENCH_IMPORT_CHILD": "1"}
    code = (
        "import json, bench.__main__ as m; m._ensure_database(); import django; django.setup();"
        "from django.core.management import call_command; call_command('migrate', verbosity=0);"
        "from bench.bench_import import _measure, ISOLATED; from dataclasses import asdict;"
        "print(json.dumps([asdict(r) for r in _measure(ISOLATED)]))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
    if done.returncode != 0:
        return [Row(f"import_cases ({ISOLATED})", "-", f"failed: {done.stderr.strip().splitlines()[-1:]}")]
    return [Row(**row) for row in json.loads(done.stdout.strip().splitlines()[-1])]


def run() -> list[Row]:
    rows = []
    if connection.vendor == "postgresql" and not os.environ.get("BENCH_IMPORT_CHILD"):
        rows += _isolated()
    rows += _measure(SHARED if Case.objects.count() > 100_000 else ISOLATED)
    return rows
