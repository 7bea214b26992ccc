"""The whole register's encodings and blocking keys as numpy columns, read from the database in bulk: what
an import's job scores its new cases against (``linkage.services.run_job``).

On PostgreSQL two ``COPY ... TO STDOUT (FORMAT binary)`` streams, parsed by numpy a few megabytes at a
time into arrays allocated once: no model instance, no Python object per row. Every row of the first
stream has the same width (the seven encodings joined into one 448-byte value, a detail not given as
zeros, as ``Columns`` holds it), so each chunk is a numpy structured array. The keys come ordered by
case, a few thousand cases per row of the second stream (their keys joined server-side), so that
11,000,000 keys are a few thousand rows to read. Elsewhere (SQLite: tests, the demo) the ORM, a
chunk at a time.

1,000,000 cases take about 490 MB of encodings and 135 MB of keys (int64 values, int32 rows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db import connection
from django.utils import timezone
from psycopg import sql

from casework.models import Case
from linkage.columns import _SEXES, COLUMNS, WORDS, Columns, oblast_code
from linkage.models import BlockKey, CaseEncoding

BYTES_PER_CASE = len(COLUMNS) * WORDS * 8
# Cases whose keys are joined into one row of the keys' stream.
KEY_GROUP = 4096
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
        ids, organisations, sexes, oblasts, waiting, bits = _encodings_copied()
    else:
        ids, organisations, sexes, oblasts, waiting, bits = _encodings_read()
    counts = np.empty((len(ids), len(COLUMNS)), dtype=np.uint16)
    for start in range(0, len(ids), 65_536):  # a chunk at a time: no (n, 7, 8) temporary of counts
        part = bits[start : start + 65_536]
        counts[start : start + 65_536] = np.bitwise_count(part).sum(axis=2, dtype=np.uint16)
    cases, keys = _keys_copied() if connection.vendor == "postgresql" else _keys_read()
    rows = np.searchsorted(ids, cases)
    rows[rows >= len(ids)] = 0
    known = ids[rows] == cases if len(ids) else np.zeros(len(cases), dtype=bool)  # keys of cases encoded meanwhile
    del cases
    if not known.all():
        keys, rows = keys[known], rows[known]
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
    return Loaded(table, keys, rows.astype(np.int32), waiting, loaded_at)


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


def _stream(statement: sql.Composable, params: Any = None) -> Iterator[memoryview]:
    """The data of a binary COPY TO STDOUT, header and trailer left out, in pieces of any length."""
    with connection.wrap_database_errors, connection.cursor() as django_cursor:
        with django_cursor.cursor.copy(statement, params) as copy:
            head = bytearray()
            pieces = iter(copy)
            for piece in pieces:
                head += piece
                if len(head) >= _HEADER:
                    break
            if head[:11] != b"PGCOPY\n\xff\r\n\x00":
                raise ValueError("not a binary COPY stream")
            extension = int.from_bytes(head[15:19], "big")
            yield memoryview(bytes(head[_HEADER + extension :]))
            yield from pieces


def _records(pieces: Iterable[memoryview], row_type: np.dtype[Any]) -> Iterator[npt.NDArray[Any]]:
    """Fixed-width rows of a binary COPY stream as structured arrays, ``PARSE_BYTES`` at a time."""
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        if len(buffer) >= PARSE_BYTES:
            whole = len(buffer) // row_type.itemsize * row_type.itemsize
            yield np.frombuffer(bytes(buffer[:whole]), dtype=row_type)
            del buffer[:whole]
    if bytes(buffer[-_TRAILER:]) != b"\xff\xff":
        raise ValueError("a binary COPY stream without its end")
    del buffer[-_TRAILER:]
    if len(buffer) % row_type.itemsize:
        raise ValueError("rows of an unexpected width (an encoding of another length?)")
    if buffer:
        yield np.frombuffer(bytes(buffer), dtype=row_type)


def _check(records: npt.NDArray[Any], fields: Iterable[str]) -> None:
    for name in fields:
        if not (records[f"{name}_length"] == records.dtype[name].itemsize).all():
            raise ValueError(f"unexpected values of {name}")


def _grown(array: npt.NDArray[Any], size: int) -> npt.NDArray[Any]:
    grown = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


def _encodings_copied() -> tuple[Ints, Ints, npt.NDArray[np.int8], npt.NDArray[np.int16], Any, Any]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {CaseEncoding._meta.db_table}")  # noqa: S608
        expected = int(cursor.fetchone()[0])
        cursor.execute(f"SELECT DISTINCT oblast FROM {Case._meta.db_table}")  # noqa: S608
        names = [row[0] for row in cursor.fetchall()]
    zero = sql.SQL("'\\x{}'::bytea").format(sql.SQL("00" * (WORDS * 8)))
    joined = sql.SQL(" || ").join(
        sql.SQL("coalesce(e.{}, {})").format(sql.Identifier(name), zero) for name in COLUMNS
    )
    statement = sql.SQL(
        "COPY (SELECT e.case_id::int8, c.organisation_id::int8,"
        " (CASE c.sex WHEN 'F' THEN {female} WHEN 'M' THEN {male} ELSE 0 END)::int2,"
        " coalesce(o.code, 0)::int2, e.matched_at IS NULL, {joined}"
        " FROM {encodings} e JOIN {cases} c ON c.id = e.case_id"
        " LEFT JOIN unnest(%s::text[], %s::int2[]) AS o(name, code) ON o.name = c.oblast"
        " ORDER BY e.case_id) TO STDOUT (FORMAT binary)"
    ).format(
        female=sql.Literal(_SEXES["F"]),
        male=sql.Literal(_SEXES["M"]),
        joined=joined,
        encodings=sql.Identifier(CaseEncoding._meta.db_table),
        cases=sql.Identifier(Case._meta.db_table),
    )
    size = expected + 1024
    ids = np.zeros(size, dtype=np.int64)
    organisations = np.zeros(size, dtype=np.int64)
    sexes = np.zeros(size, dtype=np.int8)
    oblasts = np.zeros(size, dtype=np.int16)
    waiting = np.zeros(size, dtype=bool)
    bits = np.zeros((size, len(COLUMNS), WORDS), dtype=np.uint64)
    done = 0
    params = [names, [oblast_code(name) for name in names]]
    for records in _records(_stream(statement, params), _ENCODING_ROW):
        _check(records, ("case", "organisation", "sex", "oblast", "waiting", "bits"))
        end = done + len(records)
        if end > len(ids):  # cases encoded since the count: rare, and a copy then
            size = max(end, int(len(ids) * 1.1))
            ids, organisations, sexes, oblasts, waiting, bits = (
                _grown(array, size) for array in (ids, organisations, sexes, oblasts, waiting, bits)
            )
        ids[done:end] = records["case"]
        organisations[done:end] = records["organisation"]
        sexes[done:end] = records["sex"]
        oblasts[done:end] = records["oblast"]
        waiting[done:end] = records["waiting"] != 0
        bits[done:end].view(np.uint8).reshape(end - done, -1)[:] = records["bits"]
        done = end
    # Views of the rows read (no copy); a few spare rows stay allocated, unused.
    return ids[:done], organisations[:done], sexes[:done], oblasts[:done], waiting[:done], bits[:done]


def _keys_copied() -> tuple[Ints, Ints]:
    """Every blocking key and its case, ordered by case: a row per ``KEY_GROUP`` cases, its keys joined."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {BlockKey._meta.db_table}")  # noqa: S608
        expected = int(cursor.fetchone()[0])
    statement = sql.SQL(
        "COPY (SELECT string_agg(int8send(case_id) || int8send(key), ''::bytea ORDER BY case_id)"
        " FROM {keys} GROUP BY case_id / {group} ORDER BY case_id / {group}) TO STDOUT (FORMAT binary)"
    ).format(keys=sql.Identifier(BlockKey._meta.db_table), group=sql.Literal(KEY_GROUP))
    pairs = np.zeros((expected + 4096, 2), dtype=np.int64)
    done = 0
    buffer = bytearray()
    for piece in _stream(statement):
        buffer += piece
        # Rows: a field count (2 bytes), a length (4), then the length's bytes of pairs.
        while len(buffer) >= 6:
            if buffer[:2] == b"\xff\xff":
                break
            length = int.from_bytes(buffer[2:6], "big", signed=True)
            if len(buffer) < 6 + length:
                break
            found = np.frombuffer(bytes(buffer[6 : 6 + length]), dtype=">i8").reshape(-1, 2)
            del buffer[: 6 + length]
            if done + len(found) > len(pairs):
                pairs = _grown(pairs, max(done + len(found), int(len(pairs) * 1.1)))
            pairs[done : done + len(found)] = found
            done += len(found)
    if bytes(buffer) != b"\xff\xff":
        raise ValueError("a binary COPY stream without its end")
    return pairs[:done, 0].copy(), pairs[:done, 1].copy()


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


def _keys_read() -> tuple[Ints, Ints]:
    pairs = list(BlockKey.objects.order_by("case_id", "id").values_list("case_id", "key").iterator(chunk_size=10_000))
    found = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return found[:, 0].copy(), found[:, 1].copy()
