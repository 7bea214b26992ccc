"""Benchmark: ``import_cases`` (``plan_import`` + ``apply_import``) of files of 20,000, 100,000 and 1,000,000 rows.

Each size is measured beside its floor, in the same run: a plain ``COPY ... FROM STDIN`` of the same rows
(as the importer writes them, formatted beforehand) into the same tables, in a transaction rolled back.
The import must take at most 1.5 times the floor's time, validation included, and stay under 250 MB
whatever the size (its peak RSS is its own process's). Rows are the files' rows: about a third cases,
two thirds status changes. ``BENCH_IMPORT_ROWS=20000,100000`` measures other sizes; up to 200,000 rows
the floor and the import are measured three times, alternately, and the medians compared
(``BENCH_IMPORT_REPEAT`` sets how many times).

Everything here is invented: references are ``BENCH-<n>``, there are no names. The files are written
once per size and run, from a fixed seed, to a temporary directory.
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
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Organisation
from bench.common import Row, peak_rss_mb, ratio
from casework import audit_chain, bulk
from casework.importing import apply_import, plan_import
from casework.importing.common import SOURCE_REF_KIND
from casework.importing.writing import _CASE_FIELDS, _CHANGE_FIELDS
from casework.models import Case, Institution, Oblast, Placement, Sex, Source, StatusChange
from casework.screening import linkage_digest

SIZES = (20_000, 100_000, 1_000_000)
TARGET_RATIO = 1.5
TARGET_RSS_MB = 250
ROOT = Path(__file__).resolve().parent.parent
SLUG = "bench-import"
INSTITUTIONS = ("bench-import-01", "bench-import-02", "bench-import-03")
INTERMEDIARIES = ("qatar", "vatican")
# The floor's case ids: far above the sequence (its rows are rolled back, never kept).
FLOOR_ID_BASE = 1_500_000_000


def _organisation() -> Organisation:
    organisation, _created = Organisation.objects.get_or_create(
        slug=SLUG, defaults={"name": "Benchmark import (synthetic)", "kind": Organisation.Kind.NGO}
    )
    for code in INSTITUTIONS:
        Institution.objects.get_or_create(
            code=code, defaults={"name": f"Synthetic {code}", "region": "UA-43", "kind": Institution.Kind.ORPHANAGE}
        )
    for slug in INTERMEDIARIES:
        Organisation.objects.get_or_create(
            slug=slug, defaults={"name": f"Synthetic {slug}", "kind": Organisation.Kind.INTERMEDIARY}
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
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the floor and the import start from the same tables
            cursor.execute(f"VACUUM {case_table}, {StatusChange._meta.db_table}")


def write_files(directory: Path, *, rows: int, today: dt.date) -> tuple[Path, Path, int, int]:
    """A cases file and an events file of about ``rows`` rows together, written a row at a time."""
    rng = random.Random(20250101)
    first_day = dt.date(2022, 3, 1)
    span = (today - dt.timedelta(days=200) - first_day).days
    cases_path, events_path, later_path = directory / "cases.csv", directory / "events.csv", directory / "later.csv"
    case_count = max(1, rows // 3)
    event_count = 0
    duplicates: set[int] = set()
    with (
        cases_path.open("w", newline="", encoding="utf-8") as cases_handle,
        events_path.open("w", newline="", encoding="utf-8") as events_handle,
        later_path.open("w", newline="", encoding="utf-8") as later_handle,
    ):
        cases, first, later = csv.writer(cases_handle), csv.writer(events_handle), csv.writer(later_handle)
        cases.writerow(["source_ref", "sex", "birth_year", "oblast", "reported_on", "displaced_on", "placement",
                        "institution", "source"])  # fmt: skip
        first.writerow(["source_ref", "status", "occurred_on", "via", "duplicate_of", "note"])
        for n in range(case_count):
            reported_on = first_day + dt.timedelta(days=rng.randrange(span))
            displaced = reported_on - dt.timedelta(days=rng.randrange(30, 400))
            displaced_on = rng.choice(["", displaced.strftime("%Y-%m"), displaced.isoformat()])
            cases.writerow([
                f"BENCH-{n:07d}",
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
            first.writerow([f"BENCH-{n:07d}", "verified", verified.isoformat(), "", "", ""])
            event_count += 1
            second = verified + dt.timedelta(days=rng.randrange(1, 120))
            roll = rng.random()
            row: list[str] | None
            if roll < 0.6:
                row = [f"BENCH-{n:07d}", "located", second.isoformat(), "", "", ""]
            elif roll < 0.8:
                row = [f"BENCH-{n:07d}", "return_requested", second.isoformat(), "qatar", "", ""]
            elif roll < 0.9:
                row = [f"BENCH-{n:07d}", "repatriated", second.isoformat(), "vatican", "", ""]
            elif roll < 0.95 or n == 0:
                note = "Report found to be mistaken by the regional office."
                row = [f"BENCH-{n:07d}", "withdrawn", second.isoformat(), "", "", note]
            else:
                survivor = rng.randrange(n)
                # A survivor must not be a duplicate itself (the survivors are earlier cases: known by now).
                row = None
                if survivor not in duplicates:
                    duplicates.add(n)
                    row = [f"BENCH-{n:07d}", "duplicate", second.isoformat(), "", f"BENCH-{survivor:07d}", ""]
            if row is not None:
                later.writerow(row)
                event_count += 1
    with events_path.open("a", encoding="utf-8") as events_handle, later_path.open(encoding="utf-8") as later_handle:
        for block in iter(lambda: later_handle.read(1 << 20), ""):
            events_handle.write(block)
    later_path.unlink()
    return cases_path, events_path, case_count, event_count


# --- the floor: a plain COPY of the same rows ----------------------------------------------------------------


def prepare_floor(directory: Path) -> None:
    """The same rows as the importer writes them, in COPY's text format (not timed: the floor is the COPY)."""
    organisation = _organisation()
    now = timezone.now()
    institutions = dict(Institution.objects.filter(code__in=INSTITUTIONS).values_list("code", "id"))
    via = dict(Organisation.objects.filter(slug__in=INTERMEDIARIES).values_list("slug", "id"))
    ids: dict[str, int] = {}
    case_layout = bulk.Layout.of(Case, _CASE_FIELDS, now)
    change_layout = bulk.Layout.of(StatusChange, audit_chain.sealed_fields(StatusChange, _CHANGE_FIELDS), now)
    text = bulk.copy_text
    with (
        (directory / "cases.csv").open(encoding="utf-8", newline="") as source,
        (directory / "cases.copy").open("w", encoding="utf-8") as out,
    ):
        tail = case_layout.text_tail() + "\n"
        for n, row in enumerate(csv.DictReader(source)):
            case_id = ids[row["source_ref"]] = FLOOR_ID_BASE + n
            displaced = row["displaced_on"]
            values = (
                case_id, f"F{n:010d}", organisation.pk, row["sex"], row["birth_year"] or None, row["oblast"],
                row["reported_on"], (displaced + "-01" if len(displaced) == 7 else displaced) or None,
                ("month" if len(displaced) == 7 else "day") if displaced else "", row["source"], row["placement"],
                institutions.get(row["institution"]), "verified", 3, linkage_digest(row["source_ref"],
                kind=SOURCE_REF_KIND), now,
            )  # fmt: skip
            out.write("\t".join(map(text, values)) + tail)
    with (
        (directory / "events.csv").open(encoding="utf-8", newline="") as source,
        (directory / "changes.copy").open("w", encoding="utf-8") as out,
    ):
        tail = change_layout.text_tail() + "\n"
        for row in csv.DictReader(source):
            change: tuple[object, ...] = (
                ids[row["source_ref"]], "reported", row["status"], row["occurred_on"], now, "import",
                via.get(row["via"]), ids.get(row["duplicate_of"]), row["note"], False, 2,
                audit_chain.note_digest(row["note"]), "0" * 64,
            )  # fmt: skip
            out.write("\t".join(map(text, change)) + tail)


def measure_floor(directory: Path) -> dict[str, float]:
    """COPY the prepared rows into the tables, in a transaction that is rolled back."""
    now = timezone.now()
    layouts = (
        (bulk.Layout.of(Case, _CASE_FIELDS, now), directory / "cases.copy"),
        (
            bulk.Layout.of(StatusChange, audit_chain.sealed_fields(StatusChange, _CHANGE_FIELDS), now),
            directory / "changes.copy",
        ),
    )
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for layout, path in layouts:
            with path.open("rb") as handle, cursor.cursor.copy(layout.copy_statement()) as copy:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    copy.write(block)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the foreign keys checked, as a commit would
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return {"seconds": seconds, "rss": peak_rss_mb()}


# --- the import ------------------------------------------------------------------------------------------------


class _Discard:
    def write(self, text: str) -> int:
        return len(text)


def measure_import(directory: Path) -> dict[str, float]:
    """``import_cases``'s way (and the web import's): ``plan_import``, then ``apply_import``."""
    organisation = _organisation()
    _clear(organisation)
    today = dt.date.today()
    started = time.perf_counter()
    plan = plan_import(
        cases_file=directory / "cases.csv", events_file=directory / "events.csv", organisation=organisation, today=today
    )
    planned = time.perf_counter()
    result = apply_import(plan, references_out=_Discard())
    finished = time.perf_counter()
    figures = {
        "seconds": finished - started,
        "plan": planned - started,
        "apply": finished - planned,
        "cases": result.cases,
        "events": result.events,
        "rss": peak_rss_mb(),
    }
    _clear(organisation)
    return figures


def _child(step: str, directory: Path) -> dict[str, Any]:
    """One step in a process of its own (its peak RSS is the step's), on the benchmark's own database."""
    url = os.environ["DATABASE_URL"]
    env = {**os.environ, "DATABASE_URL": f"{url}_import", "BENCH_IMPORT_CHILD": "1"}
    code = (
        "import json, sys, bench.__main__ as m; m._ensure_database(); import django; django.setup();"
        "from django.core.management import call_command; call_command('migrate', verbosity=0);"
        "from pathlib import Path; import bench.bench_import as b;"
        f"print(json.dumps(b.{step}(Path(sys.argv[1])) or {{}}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(directory)], env=env, capture_output=True, text=True, timeout=3600, cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(f"{step}: {done.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _repeats(rows: int) -> int:
    given = os.environ.get("BENCH_IMPORT_REPEAT", "")
    return int(given) if given else (3 if rows <= 200_000 else 1)


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median time, with the highest peak RSS of all runs."""
    chosen = dict(sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2])
    chosen["rss"] = max(run["rss"] for run in runs)
    return chosen


def _sizes() -> list[int]:
    given = os.environ.get("BENCH_IMPORT_ROWS", "")
    return [int(size) for size in given.split(",") if size.strip()] if given else list(SIZES)


def _measure_size(rows: int) -> list[Row]:
    today = dt.date.today()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as name:
        directory = Path(name)
        _path, _path2, cases, events = write_files(directory, rows=rows, today=today)
        _child("prepare_floor", directory)
        # Floor and import alternate, and the median of each is kept: the load of a shared machine moves
        # both, and a ratio of medians moves less than any one pair's.
        floors, imports = [], []
        for _round in range(_repeats(rows)):
            floors.append(_child("measure_floor", directory))
            imports.append(_child("measure_import", directory))
    floor = _median(floors)
    done = _median(imports)
    assert (done["cases"], done["events"]) == (cases, events), (done, cases, events)
    size = f"{cases + events:,} rows: {cases:,} cases + {events:,} changes"
    return [
        Row(
            "import_cases (plan_import + apply_import): time",
            size,
            f"{done['seconds']:.2f} s (check {done['plan']:.2f} s, write {done['apply']:.2f} s)",
            target=f"<= {TARGET_RATIO}x",
            ok=done["seconds"] <= TARGET_RATIO * floor["seconds"],
            floor=f"{floor['seconds']:.2f} s (COPY of the same rows)",
            ratio=ratio(done["seconds"], floor["seconds"]),
        ),
        Row(
            "import_cases (plan_import + apply_import): peak RSS",
            size,
            f"{done['rss']:.0f} MB",
            target=f"< {TARGET_RSS_MB} MB",
            ok=done["rss"] < TARGET_RSS_MB,
            floor=f"{floor['rss']:.0f} MB (the COPY's process)",
            ratio=ratio(done["rss"], floor["rss"]),
        ),
    ]


def run() -> list[Row]:
    if connection.vendor != "postgresql":
        return [Row("import_cases", "-", "skipped: the floor is PostgreSQL's COPY")]
    rows: list[Row] = []
    for size in _sizes():
        print(f"   import: {size:,} rows", file=sys.stderr, flush=True)
        rows += _measure_size(size)
    return rows
