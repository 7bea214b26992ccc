"""Writing many cases and history rows at once: PostgreSQL's COPY, or bulk_create elsewhere.

The importer (casework.importing) and the synthetic data generators
(devdata) write through here. COPY is several times faster than INSERT for
thousands of rows and makes no model instances; it cannot return the new ids,
so they are taken from the table's sequence first (``reserve_ids``). Columns a
writer does not give take their model defaults (``Layout``), so a field added
to a model later does not break a writer that does not know it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import connection, models
from psycopg import sql

NULL = "\\N"
# How many rows pass between two progress updates (updating per row costs more than the row).
PROGRESS_STEP = 1000


def column(model_field: models.Field[Any, Any]) -> str:
    assert model_field.column is not None
    return model_field.column


@dataclass(frozen=True)
class Layout:
    """Every concrete column of a model: the given fields first, in order, then the others at their defaults."""

    model: type[models.Model]
    columns: list[str]
    constants: tuple[object, ...]

    @classmethod
    def of(cls, model: type[models.Model], given: Sequence[str], now: dt.datetime) -> Layout:
        by_attname = {f.attname: f for f in model._meta.concrete_fields}
        unknown = set(given) - set(by_attname)
        assert not unknown, f"not fields of {model.__name__}: {sorted(unknown)}"
        # The primary key, when not given, is left to the database.
        others = [f for name, f in by_attname.items() if name not in given and not f.primary_key]
        constants = tuple(
            now
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
            else f.get_db_prep_save(f.get_default(), connection)
            for f in others
        )
        columns = [column(by_attname[name]) for name in given] + [column(f) for f in others]
        return cls(model=model, columns=columns, constants=constants)

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    def copy_statement(self) -> sql.Composed:
        return sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(self.table), sql.SQL(", ").join(sql.Identifier(name) for name in self.columns)
        )

    def text_tail(self) -> str:
        """The constant columns as the tail of a line in COPY's text format (for writers that format lines)."""
        return "".join(f"\t{copy_text(value)}" for value in self.constants)


def copy_text(value: object) -> str:
    """One value in COPY's text format."""
    if value is None:
        return NULL
    if value is True:
        return "t"
    if value is False:
        return "f"
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def copy_rows(
    layout: Layout,
    rows: Iterable[tuple[object, ...]],
    *,
    cursor: psycopg.Cursor[Any] | None = None,
    progress: Callable[[int], object] | None = None,
) -> int:
    """COPY ``rows`` (the given fields, in the layout's order) into the table. Returns how many."""
    constants = layout.constants
    done = 0

    def write(pg_cursor: psycopg.Cursor[Any]) -> None:
        nonlocal done
        with pg_cursor.copy(layout.copy_statement()) as copy:
            for done, row in enumerate(rows, start=1):
                copy.write_row(row + constants)
                if progress is not None and done % PROGRESS_STEP == 0:
                    progress(PROGRESS_STEP)
        if progress is not None:
            progress(done % PROGRESS_STEP)

    if cursor is not None:
        write(cursor)
    else:
        # The driver's own cursor, which has copy(); wrap_database_errors still turns its errors into Django's.
        with connection.wrap_database_errors, connection.cursor() as django_cursor:
            write(django_cursor.cursor)
    return done


def copy_lines(layout: Layout, text: str, *, cursor: psycopg.Cursor[Any]) -> None:
    """COPY text already formatted by the caller (tab-separated lines ending with the layout's text tail)."""
    with cursor.copy(layout.copy_statement()) as copy:
        copy.write(text)


def reserve_ids(model: type[models.Model], count: int, *, cursor: Any = None) -> Iterator[int]:
    """``count`` ids from the table's own sequence, so inserts by others, now or later, never collide.

    The database answers with runs of consecutive ids rather than every id.
    """
    query = (
        "SELECT min(id), max(id) FROM ("
        "  SELECT id, id - row_number() OVER (ORDER BY id) AS run FROM ("
        "    SELECT nextval(pg_get_serial_sequence(%s, 'id')) AS id FROM generate_series(1, %s)"
        "  ) AS reserved"
        ") AS numbered GROUP BY run ORDER BY 1"
    )
    if cursor is None:
        with connection.cursor() as django_cursor:
            django_cursor.execute(query, [model._meta.db_table, count])
            runs = django_cursor.fetchall()
    else:
        cursor.execute(query, [model._meta.db_table, count])
        runs = cursor.fetchall()
    return itertools.chain.from_iterable(range(first, last + 1) for first, last in runs)


def deferred_foreign_keys(cursor: psycopg.Cursor[Any], models_: Sequence[type[models.Model]]) -> list[str]:
    """Names of the deferred foreign keys on these models' tables (Django creates them all deferred)."""
    cursor.execute(
        "SELECT conname FROM pg_constraint"
        " WHERE contype = 'f' AND condeferrable AND condeferred AND conrelid = ANY(%s::regclass[])",
        [[model._meta.db_table for model in models_]],
    )
    return [row[0] for row in cursor.fetchall()]


def set_constraints(cursor: psycopg.Cursor[Any], names: Sequence[str], mode: str) -> None:
    """SET CONSTRAINTS ... IMMEDIATE | DEFERRED: check foreign keys as each COPY ends, or at commit."""
    if names:
        cursor.execute(
            sql.SQL("SET CONSTRAINTS {} {}").format(
                sql.SQL(", ").join(sql.Identifier(name) for name in names), sql.SQL(mode)
            )
        )


def insert_rows(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Iterable[tuple[object, ...]],
    *,
    batch_size: int,
    progress: Callable[[int], object] | None = None,
) -> list[Any]:
    """bulk_create in batches (databases without COPY). Returns the new primary keys, in order (None where the
    database cannot return them)."""
    ids: list[Any] = []
    batch: list[models.Model] = []

    def flush() -> None:
        created = model._default_manager.bulk_create(batch)
        ids.extend(instance.pk for instance in created)
        if progress is not None:
            progress(len(batch))
        batch.clear()

    for row in rows:
        batch.append(model(**dict(zip(fields, row, strict=True))))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return ids
