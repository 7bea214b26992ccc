"""Benchmark: the same child in several organisations (issue 13): linkage quality, and its speed at 1,000,000.

Quality. ``devdata.people`` invents children (families with brothers, sisters and twins), each
reported by one organisation and half of them also by a second or a third, written as each would
write them (Russian spellings, Latin transliterations, typos, a missing patronymic or place, day and
month exchanged, the year one off, the month only, a family name changed). The truth is known, so
recall (true pairs proposed) and precision (proposed pairs that are true) are measured at the default
``LINKAGE_REVIEW_SCORE`` and over a curve of scores. Encoded with the register's encoder, blocked and
scored by ``linkage.columns`` (what ``linkage.services`` scores with). Beside them, the ceiling that
blocking sets: the share of true pairs that share a blocking key at all.

Speed. 100,000 new cases against 1,000,000 encoded ones (the same synthetic register, its reports
shuffled), in a child process so that its peak memory is its own: the key index built, the new
cases' neighbours found and every pair scored. Floors measured in the same run: reading the
encodings from their file, and a plain numpy AND and bit count over every column of the same pairs
(what any Dice of them must do). One new case's candidates: the median of 21. Encoding 1,100,000
records takes a couple of minutes: the encodings are kept in a file under the temporary directory
(named by the encoder's key and the scale) for the next run.

``BENCH_LINKAGE_SCALE`` (default 1) scales both: 0.05 is a quick run (2,500 children; 50,000 against
5,000). Every name is invented; no real person's data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from bench.common import Row, peak_rss_mb, ratio
from devdata.people import People, Report
from linkage.columns import BATCH, COLUMNS, Columns, KeyIndex, candidates, neighbour_pairs
from linkage.encoding import DATE_EXTRAS, FIELDS, default_encoder

ENCODED_FIELDS = (*FIELDS, *DATE_EXTRAS)

ROOT = Path(__file__).resolve().parent.parent
SCALE = float(os.environ.get("BENCH_LINKAGE_SCALE", "1") or "1")
CHILDREN = 50_000
REGISTER = 1_000_000
NEW = 100_000
CURVE = (0.70, 0.75, 0.80, 0.82, 0.85, 0.90, 0.95)
TARGET_QUALITY = 0.97
TARGET_SECONDS = 60.0
TARGET_MB = 1024
TARGET_SINGLE_MS = 200.0
SINGLE_RUNS = 21
ORGANISATIONS = 3
SHARED = 0.5
QUALITY_SEED = 13
SPEED_SEED = 1313
# On PostgreSQL the speed is measured through the import's job, from the database (False: in memory only).
FROM_DATABASE = True
_FIELDS = ("ids", "organisations", "bits", "counts", "sexes", "oblasts", "key_values", "key_rows")


def _columns(reports: list[Report], first_id: int = 0) -> Columns:
    encoder = default_encoder()
    return Columns.of(
        range(first_id, first_id + len(reports)),
        [report.organisation for report in reports],
        encoder.encode_many(report.details for report in reports),
        [report.sex for report in reports],
        [report.oblast for report in reports],
    )


def _reports(children: int, seed: int) -> list[Report]:
    people = People(seed)
    return list(people.reports(people.children(children), organisations=ORGANISATIONS, shared=SHARED))


# --- quality -----------------------------------------------------------------------------------


def quality(children: int, *, seed: int = QUALITY_SEED) -> dict[str, object]:
    """Recall and precision over CURVE for ``children`` invented children; the blocking ceiling."""
    reports = _reports(children, seed)
    table = _columns(reports)
    child = np.asarray([report.child for report in reports], dtype=np.int64)
    by_child: dict[int, int] = defaultdict(int)
    for report in reports:
        by_child[report.child] += 1
    true_pairs = sum(count * (count - 1) // 2 for count in by_child.values())
    index = KeyIndex(table)
    mine, theirs = index.neighbours(table.key_values, table.key_rows.astype(np.int64))
    blocked = int(np.count_nonzero((mine < theirs) & (child[mine] == child[theirs])))
    pairs = candidates(table, index, table, threshold=min(CURVE))
    scores = np.asarray([pair.score for pair in pairs])
    same = np.asarray([child[pair.a] == child[pair.b] for pair in pairs], dtype=bool)
    curve = []
    for threshold in CURVE:
        chosen = scores >= threshold
        found = int(np.count_nonzero(chosen & same))
        proposed = int(np.count_nonzero(chosen))
        curve.append((threshold, found / true_pairs, found / proposed if proposed else 1.0, proposed))
    return {"records": len(reports), "true_pairs": true_pairs, "blocked": blocked / true_pairs, "curve": curve}


def _quality_rows(children: int) -> list[Row]:
    started = time.perf_counter()
    measured = quality(children)
    seconds = time.perf_counter() - started
    default = settings.LINKAGE_REVIEW_SCORE
    size = f"{children:,} children, {measured['records']:,} reports, {measured['true_pairs']:,} true pairs"
    curve = measured["curve"]
    assert isinstance(curve, list)
    at = min(curve, key=lambda point: abs(point[0] - default))
    _threshold, recall, precision, _proposed = at
    blocked = measured["blocked"]
    assert isinstance(blocked, float)
    rows = [
        Row(
            f"linkage: recall at {default:.2f}",
            size,
            f"{recall:.4f} (blocking's ceiling {blocked:.4f}: true pairs sharing a key)",
            f">= {TARGET_QUALITY}",
            recall >= TARGET_QUALITY,
        ),
        Row(
            f"linkage: precision at {default:.2f}",
            size,
            f"{precision:.4f}",
            f">= {TARGET_QUALITY}",
            precision >= TARGET_QUALITY,
        ),
        Row(
            "linkage: curve (score: recall / precision)",
            size,
            "; ".join(f"{t:.2f}: {r:.3f}/{p:.3f}" for t, r, p, _n in curve),
        ),
        Row("linkage: quality run (encode, block, score)", size, f"{seconds:.1f} s"),
    ]
    return rows


# --- speed -------------------------------------------------------------------------------------


def _cache_path(register: int, new: int) -> Path:
    # The encoder's key (through an HMAC, never the key itself) and the code that encodes name the file.
    key = hmac.digest(settings.LINKAGE_HMAC_KEY.encode(), b"bench-linkage-cache", "sha256").hex()[:12]
    code = hashlib.sha256(
        b"".join((ROOT / "linkage" / name).read_bytes() for name in ("normalise.py", "names.py", "encoding.py"))
    ).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"bench-linkage-{key}-{code}-{register}-{new}.npz"


def _build(path: Path, register: int, new: int) -> float:
    """Encode register + new invented reports (shuffled), save them to ``path``; seconds taken."""
    started = time.perf_counter()
    total = register + new
    children = int(total / (1 + SHARED * 1.25)) + 1000
    reports = _reports(children, SPEED_SEED)
    while len(reports) < total:
        reports += _reports(children // 10 + 10, SPEED_SEED + len(reports))
    random.Random(SPEED_SEED).shuffle(reports)
    reports = reports[:total]
    parts = []
    for start in range(0, total, 50_000):
        parts.append(_columns(reports[start : start + 50_000], first_id=start))
        print(f"   encoded {start + len(parts[-1]):,} of {total:,}", file=sys.stderr, flush=True)
    child = np.asarray([report.child for report in reports], dtype=np.int64)
    del reports
    table = Columns.concatenate(parts)
    del parts
    np.savez(path, child=child, **{name: getattr(table, name) for name in _FIELDS})
    return time.perf_counter() - started


def _split(table: Columns, rows: slice) -> Columns:
    keep = (table.key_rows >= (rows.start or 0)) & (table.key_rows < rows.stop)
    return Columns(
        ids=table.ids[rows],
        organisations=table.organisations[rows],
        bits=table.bits[rows],
        counts=table.counts[rows],
        sexes=table.sexes[rows],
        oblasts=table.oblasts[rows],
        key_values=table.key_values[keep],
        key_rows=(table.key_rows[keep] - (rows.start or 0)).astype(np.int32),
    )


def measure_speed(path: str, register: int, new: int) -> dict[str, float]:
    """Run in a child process: read the encodings, index the register, find the new cases' candidates."""
    threshold = settings.LINKAGE_REVIEW_SCORE
    started = time.perf_counter()
    with np.load(path) as saved:
        whole = Columns(**{name: saved[name] for name in _FIELDS})
        child = saved["child"]
    read = time.perf_counter() - started
    old, fresh = _split(whole, slice(0, register)), _split(whole, slice(register, register + new))
    del whole
    started = time.perf_counter()
    index = KeyIndex(old)
    indexed = time.perf_counter()
    pairs = candidates(fresh, index, old, threshold=threshold)
    searched = time.perf_counter()
    # The floor: a plain AND and bit count over every column of the same pairs.
    floor = 0.0
    compared = 0
    for mine, theirs in neighbour_pairs(fresh, index):
        floor_started = time.perf_counter()
        for start in range(0, len(mine), BATCH):
            a, b = mine[start : start + BATCH], theirs[start : start + BATCH]
            np.bitwise_count(fresh.bits[a] & old.bits[b]).sum(axis=2)
        floor += time.perf_counter() - floor_started
        compared += len(mine)
    # One new case at a time.
    singles = []
    for row in range(0, min(new, SINGLE_RUNS * 97), 97):
        one = _split(fresh, slice(row, row + 1))
        single_started = time.perf_counter()
        candidates(one, index, old, threshold=threshold)
        singles.append(time.perf_counter() - single_started)
    true_found = sum(1 for pair in pairs if child[pair.a] == child[pair.b])
    return {
        "read": read,
        "index": indexed - started,
        "search": searched - indexed,
        "compared": float(compared),
        "found": float(len(pairs)),
        "true_found": float(true_found),
        "floor": floor,
        "single_ms": statistics.median(singles) * 1000,
        "single_max_ms": max(singles) * 1000,
        "peak_mb": peak_rss_mb(),
    }


def _speed_rows(register: int, new: int) -> list[Row]:
    path = _cache_path(register, new)
    built = "cached"
    if not path.exists():
        print(f"   encoding {register + new:,} invented reports (kept in {path}) ...", file=sys.stderr, flush=True)
        built = f"encoded in {_build(path, register, new):.0f} s"
    code = (
        "import json, django; django.setup(); from bench.bench_linkage import measure_speed;"
        f"print(json.dumps(measure_speed({str(path)!r}, {register}, {new})))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    if done.returncode != 0:
        return [Row("linkage: speed", "-", f"failed: {done.stderr.strip().splitlines()[-1:]}", ok=False)]
    m = json.loads(done.stdout.strip().splitlines()[-1])
    size = f"{new:,} new against {register:,} encoded"
    total = m["index"] + m["search"]
    scale = register / REGISTER
    return [
        Row(
            "linkage: candidates of an import (index + search)",
            size,
            f"{total:.1f} s (index {m['index']:.1f} s, search {m['search']:.1f} s; {m['compared']:,.0f} pairs "
            f"scored, {m['found']:,.0f} kept, {m['true_found']:,.0f} true); floor: AND + bit count of the "
            f"same pairs {m['floor']:.1f} s, {m['search'] / m['floor']:.1f}x; reading the encodings "
            f"{m['read']:.1f} s ({built})",
            f"< {TARGET_SECONDS * scale:.0f} s" if scale < 1 else f"< {TARGET_SECONDS:.0f} s",
            total < TARGET_SECONDS * max(scale, 0.05) if scale < 1 else total < TARGET_SECONDS,
        ),
        Row(
            "linkage: memory (child process, peak RSS)",
            size,
            f"{m['peak_mb']:.0f} MB (encodings {register + new:,} x 448 B = {(register + new) * 448 / 2**20:.0f} MB)",
            f"< {TARGET_MB} MB",
            m["peak_mb"] < TARGET_MB,
        ),
        Row(
            "linkage: one new case's candidates",
            f"1 against {register:,} encoded",
            f"median {m['single_ms']:.1f} ms, max {m['single_max_ms']:.1f} ms (of {SINGLE_RUNS}), in memory",
            f"< {TARGET_SINGLE_MS:.0f} ms",
            m["single_ms"] < TARGET_SINGLE_MS,
        ),
    ]


def run() -> list[Row]:
    children = max(500, int(CHILDREN * SCALE))
    register, new = max(1000, int(REGISTER * SCALE)), max(100, int(NEW * SCALE))
    print(f"   linkage quality: {children:,} children ...", file=sys.stderr, flush=True)
    rows = _quality_rows(children)
    print(f"   linkage speed: {new:,} new against {register:,} ...", file=sys.stderr, flush=True)
    if FROM_DATABASE and connection.vendor == "postgresql":  # the import's job, through its real path
        return rows + _job_rows(register, new)
    return rows + _speed_rows(register, new)


if __name__ == "__main__":  # pragma: no cover
    import django

    django.setup()
    for row in run():
        print(asdict(row))


# --- the register in PostgreSQL ----------------------------------------------------------------

ORGANISATION_PREFIX = "bench-linkage"
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"


def _binary_rows(fields: list[tuple[str, np.dtype[Any], npt.NDArray[Any]]]) -> bytes:
    """Rows of fixed-width, non-null values in COPY's binary format (big-endian, each with its length)."""
    layout: list[tuple[str, Any]] = [("count", ">i2")]
    for name, dtype, _values in fields:
        layout += [(f"{name}_length", ">i4"), (name, dtype)]
    rows = np.zeros(len(fields[0][2]), dtype=np.dtype(layout))
    rows["count"] = len(fields)
    for name, dtype, values in fields:
        rows[f"{name}_length"] = np.dtype(dtype).itemsize
        rows[name] = values
    return rows.tobytes()


def load_register(path: Path, register: int, new: int) -> tuple[str, list[int]]:
    """Write the cached encodings into the database once: register + new cases in three organisations
    (cases with their sex and oblast, encodings, blocking keys), the register's matched, the new cases
    waiting, as after an import. Returns what was done and the new cases' ids. Skipped when the rows
    are already there (as bench_generate does for cases)."""
    from accounts.models import Organisation
    from casework import bulk
    from casework.models import Case
    from linkage.models import BlockKey, CaseEncoding

    total = register + new
    slugs = [f"{ORGANISATION_PREFIX}-{number}" for number in range(ORGANISATIONS)]
    present = CaseEncoding.objects.filter(case__organisation__slug__in=slugs)
    if present.count() == total:
        return "in the database already", list(present.order_by("case_id").values_list("case_id", flat=True)[register:])
    started = time.perf_counter()
    with transaction.atomic():
        Case.objects.filter(organisation__slug__in=slugs).delete()
        organisations = [
            Organisation.objects.get_or_create(
                slug=slug, defaults={"name": f"{slug} (synthetic)", "kind": Organisation.Kind.NGO}
            )[0].pk
            for slug in slugs
        ]
        with np.load(path) as saved:
            table = Columns(**{name: saved[name] for name in _FIELDS})
        pg = connection.cursor().connection
        with pg.cursor() as cursor:
            ids = np.fromiter(bulk.reserve_ids(Case, total, cursor=cursor), dtype=np.int64, count=total)
            now = timezone.now()
            layout = bulk.Layout.of(Case, ("id", "reference", "organisation_id", "sex", "oblast", "reported_on"), now)
            tail = layout.text_tail()
            sexes = {0: "U", 1: "F", 2: "M"}
            oblast_names = {code: f"UA-{code:02d}" for code in range(1, 100)}
            oblast_names[0] = ""
            for start in range(0, total, 100_000):
                lines = "".join(
                    f"{ids[row]}\tLK{ids[row]:09d}\t{organisations[table.organisations[row]]}\t"
                    f"{sexes[int(table.sexes[row])]}\t{oblast_names[int(table.oblasts[row])]}\t2024-01-01{tail}\n"
                    for row in range(start, min(total, start + 100_000))
                )
                bulk.copy_lines(layout, lines, cursor=cursor)
            print(f"   {total:,} cases written", file=sys.stderr, flush=True)
            columns = ["case_id", *ENCODED_FIELDS, "encoded_at", "matched_at"]
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
                sql.Identifier(CaseEncoding._meta.db_table),
                sql.SQL(", ").join(sql.Identifier(name) for name in columns),
            )
            raw = table.bits.view(np.uint8).reshape(total, len(COLUMNS), -1)
            with cursor.copy(statement) as copy:
                copy.set_types(["int8", *(["bytea"] * len(ENCODED_FIELDS)), "timestamptz", "timestamptz"])
                for row in range(total):
                    counts = table.counts[row]
                    copy.write_row(
                        (
                            int(ids[row]),
                            *(
                                raw[row, COLUMNS.index(name)].tobytes() if counts[COLUMNS.index(name)] else None
                                for name in ENCODED_FIELDS
                            ),
                            now,
                            now if row < register else None,
                        )
                    )
            print(f"   {total:,} encodings written", file=sys.stderr, flush=True)
            statement = sql.SQL("COPY {} (case_id, key) FROM STDIN (FORMAT binary)").format(
                sql.Identifier(BlockKey._meta.db_table)
            )
            with cursor.copy(statement) as copy:
                copy.write(_COPY_HEADER)
                step = 2_000_000
                for start in range(0, len(table.key_values), step):
                    copy.write(
                        _binary_rows(
                            [
                                ("case", np.dtype(">i8"), ids[table.key_rows[start : start + step]]),
                                ("key", np.dtype(">i8"), table.key_values[start : start + step]),
                            ]
                        )
                    )
                copy.write(_COPY_TRAILER)
            print(f"   {len(table.key_values):,} blocking keys written", file=sys.stderr, flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE casework_case, linkage_caseencoding, linkage_blockkey")
    return f"written in {time.perf_counter() - started:.0f} s", ids[register:].tolist()


def measure_job(first: int, last: int) -> dict[str, float]:
    """Run in a child process: the import's job through its real path, from the database: the new cases
    (ids first..last) made to wait again (their pairs dropped), then ``services.run_job``; its peak RSS.
    Then the floors: the same COPY read and discarded, and a plain AND + bit count of the same pairs; and
    one new case at a time through ``services.match_cases`` (what a caseworker's save runs)."""
    from linkage import register as loading
    from linkage import services
    from linkage.models import MatchJob

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM linkage_candidate WHERE case_b_id BETWEEN %s AND %s", [first, last])
        cursor.execute(
            "UPDATE linkage_caseencoding SET matched_at = NULL WHERE case_id BETWEEN %s AND %s", [first, last]
        )
        cursor.execute("ANALYZE linkage_candidate")
    timings: dict[str, float] = {}
    real_load = loading.load

    def timed_load() -> loading.Loaded:
        started = time.perf_counter()
        try:
            return real_load()
        finally:
            timings["load"] = time.perf_counter() - started

    loading.load = timed_load
    job = MatchJob.objects.create(total=last - first + 1)
    started, cpu_started = time.perf_counter(), time.process_time()
    done = services.run_job(job.pk)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    loading.load = real_load
    peak = peak_rss_mb()
    assert done is not None and done.state == MatchJob.State.DONE, done
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM linkage_candidate WHERE case_a_id BETWEEN %s AND %s OR case_b_id BETWEEN %s AND %s",
            [first, last, first, last],
        )
        kept = int(cursor.fetchone()[0])
    # Floor 1: the same COPY, its rows read and dropped.
    started = time.perf_counter()
    statement, params = loading.copy_statement()
    rows = sum(1 for _row in loading.stream(statement, params))
    read_floor = time.perf_counter() - started
    del statement, params
    # Floor 2: a plain AND and bit count over every column of the same pairs.
    loaded = loading.load()
    table = loaded.table
    waiting = np.flatnonzero((table.ids >= first) & (table.ids <= last))
    mine = np.isin(loaded.key_rows, waiting)
    query_values, query_rows = loaded.key_values[mine], loaded.key_rows[mine]
    index = KeyIndex.consuming(loaded.key_values, loaded.key_rows)
    del loaded, mine
    and_floor, compared = 0.0, 0
    for start in range(0, len(waiting), 2000):
        chunk = waiting[start : start + 2000]
        low, high = np.searchsorted(query_rows, [chunk[0], chunk[-1] + 1])
        ours, theirs = index.neighbours(query_values[low:high], query_rows[low:high].astype(np.int64))
        other = ours != theirs
        ours, theirs = ours[other], theirs[other]
        floor_started = time.perf_counter()
        for at in range(0, len(ours), BATCH):
            a, b = ours[at : at + BATCH], theirs[at : at + BATCH]
            np.bitwise_count(table.bits[a] & table.bits[b]).sum(axis=2)
        and_floor += time.perf_counter() - floor_started
        compared += len(ours)
    del index, table
    # One new case at a time, as when a caseworker saves a case.
    singles = []
    for case_id in range(first, last + 1, max(1, (last - first) // SINGLE_RUNS))[:SINGLE_RUNS]:
        single_started = time.perf_counter()
        services.match_cases([case_id])
        singles.append(time.perf_counter() - single_started)
    return {
        "job": seconds,
        "cpu": cpu,
        "load": timings.get("load", 0.0),
        "rows": float(rows),
        "found": float(done.found),
        "kept": float(kept),
        "compared": float(compared),
        "read_floor": read_floor,
        "and_floor": and_floor,
        "peak_mb": peak,
        "single_ms": statistics.median(singles) * 1000,
        "single_max_ms": max(singles) * 1000,
        "single_runs": float(len(singles)),
    }


def _load_average() -> str:
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "load average unknown"


def _job_rows(register: int, new: int) -> list[Row]:
    """The import's job from PostgreSQL, in a child process so that its peak memory is its own."""
    path = _cache_path(register, new)
    built = "cached"
    if not path.exists():
        print(f"   encoding {register + new:,} invented reports (kept in {path}) ...", file=sys.stderr, flush=True)
        built = f"encoded in {_build(path, register, new):.0f} s"
    print("   the register in the database ...", file=sys.stderr, flush=True)
    written, new_ids = load_register(path, register, new)
    first, last = min(new_ids), max(new_ids)
    assert last - first + 1 == len(new_ids), "the new cases' ids are not one run"
    code = (
        "import json, django; django.setup(); from bench.bench_linkage import measure_job;"
        f"print(json.dumps(measure_job({first}, {last})))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings")}
    before = _load_average()
    print(f"   the job: {new:,} new against {register:,} ({before}) ...", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=3600, cwd=ROOT)
    after = _load_average()
    if done.returncode != 0:
        return [Row("linkage: import's job", "-", f"failed: {done.stderr.strip().splitlines()[-1:]}", ok=False)]
    m = json.loads(done.stdout.strip().splitlines()[-1])
    size = f"{new:,} new against {register:,} encoded, in PostgreSQL"
    scale = register / REGISTER
    target = TARGET_SECONDS * max(scale, 0.05) if scale < 1 else TARGET_SECONDS
    floor = m["read_floor"] + m["and_floor"]
    return [
        Row(
            "linkage: candidates of an import (the job, from PostgreSQL)",
            size,
            f"{m['job']:.1f} s (CPU of its process {m['cpu']:.1f} s; reading the register {m['load']:.1f} s; "
            f"{m['compared']:,.0f} pairs scored, "
            f"{m['kept']:,.0f} kept; {before} before, {after} after; register {written}, encodings {built})",
            f"< {target:.0f} s",
            m["job"] < target,
            floor=f"{floor:.1f} s: COPY of the same rows {m['read_floor']:.1f} s + AND and bit count of the same "
            f"pairs {m['and_floor']:.1f} s",
            ratio=ratio(m["job"], floor),
        ),
        Row(
            "linkage: memory of the job (child process, peak RSS)",
            size,
            f"{m['peak_mb']:.0f} MB (encodings {register + new:,} x 448 B = {(register + new) * 448 / 2**20:.0f} MB)",
            f"< {TARGET_MB} MB",
            m["peak_mb"] < TARGET_MB,
        ),
        Row(
            "linkage: one new case's candidates",
            f"1 against {register + new:,} encoded, in PostgreSQL",
            f"median {m['single_ms']:.1f} ms, max {m['single_max_ms']:.1f} ms (of {m['single_runs']:.0f}), "
            f"services.match_cases; {after}",
            f"< {TARGET_SINGLE_MS:.0f} ms",
            m["single_ms"] < TARGET_SINGLE_MS,
        ),
    ]
