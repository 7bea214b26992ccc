"""The whole register's encodings and blocking keys as numpy columns, read from the database in bulk: what
an import's job scores its new cases against (``linkage.services.run_job``).

On PostgreSQL one ``COPY ... TO STDOUT (FORMAT binary)``, a row per case ordered by case id: its
sex, oblast and organisation, its seven encodings joined into one 448-byte value (a detail not given as
zeros, as ``Columns`` holds it), then its blocking keys joined server-side (read in order from the
unique index on (case, key), so that 11,000,000 keys are not 11,000,000 rows to read). The rows are
gathered a few megabytes at a time and parsed by numpy into arrays allocated once: no model instance,
no Python object per value. Elsewhere (SQLite: tests, the demo) the ORM, a chunk at a time.

1,000,000 cases take about 490 MB of encodings and 135 MB of keys (int64 values, int32 rows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from casework.models import Case
from linkage.columns import _SEXES, COLUMNS, WORDS, Columns, oblast_code
from linkage.models import BlockKey, CaseEncoding

BYTES_PER_CASE = len(COLUMNS) * WORDS * 8
# Bytes of a COPY stream parsed at once.
PARSE_BYTES = 8 << 20
_HEADER = 19  # PGCOPY signature, flags, header extension length
_TRAILER = 2  # a field count of -1

Ints = npt.NDArray[np.int64]


@dataclass
class Loaded:
    """Every encoded case (rows ordered by case id), its keys (ordered by row), and which rows wait."""

    table: Columns  # without keys: they are below, for the job to index and drop
    key_values: Ints
    key_rows: npt.NDArray[np.int32]
    waiting: npt.NDArray[np.bool_]
    loaded_at: dt.datetime


def load() -> Loaded:
    loaded_at = timezone.now()
    if connection.vendor == "postgresql":
        arrays = _copied()
        done, keys = arrays.cases, arrays.keys
        # Views of the rows read (no copy); a few spare rows stay allocated, unused.
        ids, organisations, sexes, oblasts = (
            arrays.ids[:done],
            arrays.organisations[:done],
            arrays.sexes[:done],
            arrays.oblasts[:done],
        )
        waiting, bits = arrays.waiting[:done], arrays.bits[:done]
        key_values, key_rows = arrays.key_values[:keys], arrays.key_rows[:keys]
        del arrays
    else:
        ids, organisations, sexes, oblasts, waiting, bits = _encodings_read()
        key_values, key_rows = _keys_read(ids)
    counts = np.empty((len(ids), len(COLUMNS)), dtype=np.uint16)
    for start in range(0, len(ids), 65_536):  # a chunk at a time: no (n, 7, 8) temporary of counts
        part = bits[start : start + 65_536]
        counts[start : start + 65_536] = np.bitwise_count(part).sum(axis=2, dtype=np.uint16)
    table = Columns(
        ids=ids,
        organisations=organisations,
        bits=bits,
        counts=counts,
        sexes=sexes,
        oblasts=oblasts,
        key_values=np.zeros(0, dtype=np.int64),
        key_rows=np.zeros(0, dtype=np.int32),
    )
    return Loaded(table, key_values, key_rows, waiting, loaded_at)


# --- PostgreSQL -------------------------------------------------------------------------------------


def _row_type(fields: list[tuple[str, Any]]) -> np.dtype[Any]:
    layout: list[tuple[str, Any]] = [("count", ">i2")]
    for name, kind in fields:
        layout += [(f"{name}_length", ">i4"), (name, kind)]
    return np.dtype(layout)


_ENCODING_ROW = _row_type(
    [
        ("case", ">i8"),
        ("organisation", ">i8"),
        ("sex", ">i2"),
        ("oblast", ">i2"),
        ("waiting", "u1"),
        ("bits", ("u1", (BYTES_PER_CASE,))),
    ]
)
# Each row: the fields above, then the case's keys (8 bytes each; NULL: none).
_FIELD_COUNT = (len(_ENCODING_ROW.names or ()) // 2 + 1).to_bytes(2, "big")


def stream(statement: sql.Composable, params: Any = None) -> Iterator[memoryview]:
    """The rows of a binary COPY TO STDOUT, one piece each (PostgreSQL sends one message per row), the
    header and trailer left out."""
    with transaction.atomic(), connection.wrap_database_errors, connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        # Index scans merged: compiling them (JIT) costs more than it saves.
        cursor.execute("SET LOCAL jit = off")
        with cursor.copy(statement, params) as copy:
            first = True
            for piece in copy:
                if first:
                    if bytes(piece[:11]) != b"PGCOPY\n\xff\r\n\x00":
                        raise ValueError("not a binary COPY stream")
                    piece = piece[_HEADER + int.from_bytes(piece[15:19], "big") :]
                    first = False
                if len(piece) == _TRAILER and bytes(piece) == b"\xff\xff":
                    continue
                if len(piece):
                    yield piece


def _check(records: npt.NDArray[Any], fields: Iterable[str]) -> None:
    for name in fields:
        if not (records[f"{name}_length"] == records.dtype[name].itemsize).all():
            raise ValueError(f"unexpected values of {name}")


def _grown(array: npt.NDArray[Any], size: int) -> npt.NDArray[Any]:
    grown = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


def _estimate(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT greatest(reltuples, 0)::int8 FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
    return int(row[0]) if row else 0


class _Arrays:
    """The arrays being filled, allocated once at the expected size (grown, a copy, when more came)."""

    def __init__(self, cases: int, keys: int) -> None:
        self.ids = np.zeros(cases, dtype=np.int64)
        self.organisations = np.zeros(cases, dtype=np.int64)
        self.sexes = np.zeros(cases, dtype=np.int8)
        self.oblasts = np.zeros(cases, dtype=np.int16)
        self.waiting = np.zeros(cases, dtype=bool)
        self.bits = np.zeros((cases, len(COLUMNS), WORDS), dtype=np.uint64)
        self.key_values = np.zeros(keys, dtype=np.int64)
        self.key_rows = np.zeros(keys, dtype=np.int32)
        self.cases = self.keys = 0

    def add(self, fixed: bytes, keys: bytes, counts: list[int]) -> None:
        records = np.frombuffer(fixed, dtype=_ENCODING_ROW)
        _check(records, ("case", "organisation", "sex", "oblast", "waiting", "bits"))
        low, high = self.cases, self.cases + len(records)
        if high > len(self.ids):
            size = max(high, int(len(self.ids) * 1.1))
            for name in ("ids", "organisations", "sexes", "oblasts", "waiting", "bits"):
                setattr(self, name, _grown(getattr(self, name), size))
        self.ids[low:high] = records["case"]
        self.organisations[low:high] = records["organisation"]
        self.sexes[low:high] = records["sex"]
        self.oblasts[low:high] = records["oblast"]
        self.waiting[low:high] = records["waiting"] != 0
        self.bits[low:high].view(np.uint8).reshape(high - low, -1)[:] = records["bits"]
        values = np.frombuffer(keys, dtype=">i8")
        first, last = self.keys, self.keys + len(values)
        if last > len(self.key_values):
            size = max(last, int(len(self.key_values) * 1.1))
            self.key_values, self.key_rows = _grown(self.key_values, size), _grown(self.key_rows, size)
        self.key_values[first:last] = values
        self.key_rows[first:last] = np.repeat(np.arange(low, high, dtype=np.int32), counts)
        self.cases, self.keys = high, last


def copy_statement() -> tuple[sql.Composed, list[Any]]:
    """The COPY that reads every encoded case with its keys, ordered by case: a row per case (its keys
    joined server-side, read through the unique index on (case, key)). The benchmark reads it too."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT oblast FROM {Case._meta.db_table}")  # noqa: S608
        names = [row[0] for row in cursor.fetchall()]
    zero = sql.SQL("'\\x{}'::bytea").format(sql.SQL("00" * (WORDS * 8)))
    joined = sql.SQL(" || ").join(sql.SQL("coalesce(e.{}, {})").format(sql.Identifier(name), zero) for name in COLUMNS)
    statement = sql.SQL(
        "COPY (SELECT e.case_id::int8, c.organisation_id::int8,"
        " (CASE c.sex WHEN 'F' THEN {female} WHEN 'M' THEN {male} ELSE 0 END)::int2,"
        " coalesce(o.code, 0)::int2, e.matched_at IS NULL, {joined}, k.keys"
        " FROM {encodings} e JOIN {cases} c ON c.id = e.case_id"
        " LEFT JOIN unnest(%s::text[], %s::int2[]) AS o(name, code) ON o.name = c.oblast"
        " LEFT JOIN (SELECT case_id, string_agg(int8send(key), ''::bytea) AS keys FROM {keys} GROUP BY case_id)"
        " AS k ON k.case_id = e.case_id"
        " ORDER BY e.case_id) TO STDOUT (FORMAT binary)"
    ).format(
        female=sql.Literal(_SEXES["F"]),
        male=sql.Literal(_SEXES["M"]),
        joined=joined,
        encodings=sql.Identifier(CaseEncoding._meta.db_table),
        cases=sql.Identifier(Case._meta.db_table),
        keys=sql.Identifier(BlockKey._meta.db_table),
    )
    return statement, [names, [oblast_code(name) for name in names]]


def _copied() -> _Arrays:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {CaseEncoding._meta.db_table}")  # noqa: S608
        expected = int(cursor.fetchone()[0])
    statement, params = copy_statement()
    arrays = _Arrays(expected + 1024, int(_estimate(BlockKey._meta.db_table) * 1.02) + 4096)
    width = _ENCODING_ROW.itemsize
    fixed, keys, counts = bytearray(), bytearray(), []
    for row in stream(statement, params):
        if row[:2] != _FIELD_COUNT:
            raise ValueError("rows of an unexpected form")
        fixed += row[:width]
        length = int.from_bytes(row[width : width + 4], "big", signed=True)
        if length > 0:
            keys += row[width + 4 :]
        counts.append(max(length, 0) // 8)
        if len(fixed) >= PARSE_BYTES:
            arrays.add(bytes(fixed), bytes(keys), counts)
            fixed, keys, counts = bytearray(), bytearray(), []
    if fixed:
        arrays.add(bytes(fixed), bytes(keys), counts)
    return arrays


# --- elsewhere (SQLite) -----------------------------------------------------------------------------


def _encodings_read() -> tuple[Ints, Ints, npt.NDArray[np.int8], npt.NDArray[np.int16], Any, Any]:
    rows = (
        CaseEncoding.objects.order_by("case_id")
        .values_list("case_id", "case__organisation_id", "case__sex", "case__oblast", "matched_at", *COLUMNS)
        .iterator(chunk_size=2000)
    )
    ids: list[int] = []
    organisations: list[int] = []
    sexes: list[int] = []
    oblasts: list[int] = []
    waiting: list[bool] = []
    encoded: list[bytes] = []
    zero = bytes(WORDS * 8)
    for case_id, organisation_id, sex, oblast, matched_at, *fields in rows:
        ids.append(case_id)
        organisations.append(organisation_id)
        sexes.append(_SEXES.get(sex, 0))
        oblasts.append(oblast_code(oblast))
        waiting.append(matched_at is None)
        encoded.append(b"".join(zero if value is None else bytes(value) for value in fields))
    bits = np.frombuffer(b"".join(encoded), dtype=np.uint64).reshape(len(ids), len(COLUMNS), WORDS).copy()
    return (
        np.asarray(ids, dtype=np.int64),
        np.asarray(organisations, dtype=np.int64),
        np.asarray(sexes, dtype=np.int8),
        np.asarray(oblasts, dtype=np.int16),
        np.asarray(waiting, dtype=bool),
        bits,
    )


def _keys_read(ids: Ints) -> tuple[Ints, npt.NDArray[np.int32]]:
    """The keys of the cases read (ordered by row); keys of cases encoded since are left out."""
    pairs = list(BlockKey.objects.order_by("case_id", "id").values_list("case_id", "key").iterator(chunk_size=10_000))
    found = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    rows = np.searchsorted(ids, found[:, 0])
    rows[rows >= len(ids)] = 0
    known = ids[rows] == found[:, 0] if len(ids) else np.zeros(len(found), dtype=bool)
    return found[known, 1].copy(), rows[known].astype(np.int32)
