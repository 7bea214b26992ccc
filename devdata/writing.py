"""Writing generated cases: with the ORM (the demo, SQLite), or formatted for COPY (PostgreSQL, at scale)."""

from __future__ import annotations

import base64
import queue
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import models
from django.utils import timezone

from accounts.models import Organisation
from casework import audit_chain, bulk
from casework.models import (
    Case,
    StatusChange,
)
from casework.references import ALPHABET
from devdata.generator import REPORTED, CaseSpec, ChangeSpec

# --- writing -----------------------------------------------------------------


def _taken_references(candidates: Iterable[str]) -> set[str]:
    taken: set[str] = set()
    values = list(candidates)
    for start in range(0, len(values), 5000):
        chunk = values[start : start + 5000]
        taken.update(Case.objects.filter(reference__in=chunk).values_list("reference", flat=True))
    return taken


_BASE32_TO_REFERENCE = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode())


def _random_references(count: int) -> set[str]:
    """Up to ``count`` references in the format of ``references.new_reference``, drawn in one go.

    Five random bytes are exactly eight base-32 characters, so this is the
    same uniform draw as ``new_reference`` without a call per character.
    """
    text = base64.b32encode(secrets.token_bytes(5 * count)).translate(_BASE32_TO_REFERENCE).decode()
    return {f"C-{text[i : i + 4]}-{text[i + 4 : i + 8]}" for i in range(0, 8 * count, 8)}


def _random_references_exactly(count: int) -> set[str]:
    """``count`` distinct references (not checked against the database)."""
    result: set[str] = set()
    while len(result) < count:
        result |= _random_references(count - len(result))
    return result


def fresh_references(count: int) -> list[str]:
    """``count`` distinct references that no case in the database holds yet."""
    result: set[str] = set()
    while len(result) < count:
        candidates = _random_references(count - len(result)) - result
        result |= candidates - _taken_references(candidates)
    return list(result)


@contextmanager
def _keeping_created_at() -> Iterator[None]:
    """Let bulk_create store each case's own ``created_at`` instead of the time of the insert."""
    created_at = Case._meta.get_field("created_at")
    assert isinstance(created_at, models.DateTimeField)
    saved = created_at.auto_now_add
    created_at.auto_now_add = False
    try:
        yield
    finally:
        created_at.auto_now_add = saved


def _write_with_orm(
    specs: Sequence[CaseSpec],
    references: Sequence[str],
    vias: Mapping[str, Organisation],
    *,
    changes_in_recording_order: bool = False,
) -> int:
    """Insert the cases, then their histories, with bulk_create. Returns the number of changes."""
    cases = [
        Case(
            reference=reference,
            organisation_id=spec.organisation_id,
            assigned_to_id=spec.assigned_to_id,
            sex=spec.sex,
            birth_year=spec.birth_year,
            oblast=spec.oblast,
            reported_on=spec.reported_on,
            displaced_on=spec.displaced_on,
            displaced_precision=spec.displaced_precision,
            source=spec.source,
            placement=spec.placement,
            institution_id=spec.institution_id,
            risk_adoption=spec.risk_adoption,
            risk_citizenship=spec.risk_citizenship,
            risk_military=spec.risk_military,
            risk_medical=spec.risk_medical,
            notes=spec.notes,
            status=spec.status,
            version=spec.version,
            created_at=spec.created_at,
            last_change_at=spec.last_change_at,
        )
        for spec, reference in zip(specs, references, strict=True)
    ]
    with _keeping_created_at():
        Case.objects.bulk_create(cases, batch_size=2000)
    for spec, case in zip(specs, cases, strict=True):
        assert case.pk is not None, "the database did not return the new ids"
        spec.pk = case.pk
    pairs: Iterable[tuple[CaseSpec, ChangeSpec]] = ((spec, change) for spec in specs for change in spec.changes)
    if changes_in_recording_order:
        # Ids then follow the recording time across cases, as they would in use.
        pairs = sorted(pairs, key=lambda pair: pair[1].recorded_at)
    rows = [
        StatusChange(
            case_id=_pk(spec),
            from_status=change.from_status,
            to_status=change.to_status,
            occurred_on=change.occurred_on,
            recorded_at=change.recorded_at,
            recorded_by_id=change.recorded_by_id,
            recorded_via=change.recorded_via,
            via=vias[change.via_slug] if change.via_slug else None,
            duplicate_of_id=change.duplicate_of.pk if change.duplicate_of is not None else None,
            note=change.note,
            is_correction=change.is_correction,
            version=change.version,
        )
        for spec, change in pairs
    ]
    # The history is chained (casework.audit_chain) in the order the rows get their ids: this list's.
    with audit_chain.appending(StatusChange) as chain:
        for row in rows:
            chain.seal(row)
        StatusChange.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


# --- writing with COPY (PostgreSQL) -------------------------------------------

_CASE_COLUMNS = (
    "id",
    "reference",
    "organisation_id",
    "assigned_to_id",
    "sex",
    "birth_year",
    "oblast",
    "reported_on",
    "displaced_on",
    "displaced_precision",
    "source",
    "placement",
    "institution_id",
    "risk_adoption",
    "risk_citizenship",
    "risk_military",
    "risk_medical",
    "status",
    "version",
    "notes",
    "created_at",
    "updated_at",
    "last_change_at",
)
_CHANGE_COLUMNS = (
    "case_id",
    "from_status",
    "to_status",
    "occurred_on",
    "recorded_at",
    "recorded_by_id",
    "recorded_via",
    "via_id",
    "duplicate_of_id",
    "note",
    "is_correction",
    "version",
    "note_digest",
    "chain_hash",
)


def _pk(spec: CaseSpec) -> int:
    assert spec.pk is not None, "the case is not stored yet"
    return spec.pk


def case_layout() -> bulk.Layout:
    """Every column of the cases' table: the generated ones above, the others at their defaults."""
    return bulk.Layout.of(Case, _CASE_COLUMNS, timezone.now())


def change_layout() -> bulk.Layout:
    return bulk.Layout.of(StatusChange, _CHANGE_COLUMNS, timezone.now())


@dataclass
class _CopyChunk:
    references: list[str]
    case_lines: list[str]  # one per case, in the order of ``references``
    change_text: str


class _CopyFormatter:
    """Turns generated cases into COPY text, giving them ids from a reserved run.

    The history rows are chained (casework.audit_chain) in the order they are
    formatted, which is the order COPY inserts them in: the chunks must be
    written in the order they are made, under the chain's lock.
    """

    def __init__(self, ids: Iterator[int], vias: Mapping[str, Organisation], chain: audit_chain.Chain) -> None:
        self.ids = ids
        self.chain = chain
        self.via_pks = {slug: organisation.pk for slug, organisation in vias.items()}
        self.via_ids = {slug: str(pk) for slug, pk in self.via_pks.items()}
        self.case_tail = case_layout().text_tail()
        self.change_tail = change_layout().text_tail()
        self.now = str(timezone.now())

    def chunk(self, specs: Sequence[CaseSpec], references: list[str]) -> _CopyChunk:
        for spec in specs:
            spec.pk = next(self.ids)
        # Inlined conversions: this loop formats some four million rows for a million cases.
        n, t = bulk.NULL, bulk.copy_text
        now, via_ids, case_tail, change_tail = self.now, self.via_ids, self.case_tail, self.change_tail
        seal = self.chain.seal_values
        case_lines = []
        change_lines = []
        for spec, reference in zip(specs, references, strict=True):
            changes = spec.changes
            if changes:
                status, last_change_at = changes[-1].to_status, str(changes[-1].recorded_at)
            else:
                status, last_change_at = REPORTED, n
            case_lines.append(
                f"{spec.pk}\t{reference}\t{spec.organisation_id}\t"
                f"{n if spec.assigned_to_id is None else spec.assigned_to_id}\t{spec.sex}\t"
                f"{n if spec.birth_year is None else spec.birth_year}\t{spec.oblast}\t{spec.reported_on}\t"
                f"{n if spec.displaced_on is None else spec.displaced_on}\t{spec.displaced_precision}\t"
                f"{spec.source}\t{spec.placement}\t{n if spec.institution_id is None else spec.institution_id}\t"
                f"{'t' if spec.risk_adoption else 'f'}\t{'t' if spec.risk_citizenship else 'f'}\t"
                f"{'t' if spec.risk_military else 'f'}\t{'t' if spec.risk_medical else 'f'}\t"
                f"{status}\t{1 + len(changes)}\t{t(spec.notes) if spec.notes else ''}\t"
                f"{spec.created_at}\t{now}\t{last_change_at}{case_tail}\n"
            )
            for change in changes:
                survivor = change.duplicate_of
                values = {
                    "case_id": spec.pk,
                    "from_status": change.from_status,
                    "to_status": change.to_status,
                    "occurred_on": change.occurred_on,
                    "recorded_at": change.recorded_at,
                    "recorded_by_id": change.recorded_by_id,
                    "recorded_by_token_id": None,
                    "recorded_via": change.recorded_via,
                    "via_id": self.via_pks[change.via_slug] if change.via_slug else None,
                    "duplicate_of_id": None if survivor is None else survivor.pk,
                    "note": change.note,
                    "is_correction": change.is_correction,
                    "version": change.version,
                }
                chain_hash = seal(values)
                change_lines.append(
                    f"{spec.pk}\t{change.from_status}\t{change.to_status}\t{change.occurred_on}\t"
                    f"{change.recorded_at}\t{n if change.recorded_by_id is None else change.recorded_by_id}\t"
                    f"{t(change.recorded_via) if change.recorded_via else ''}\t"
                    f"{via_ids[change.via_slug] if change.via_slug else n}\t"
                    f"{n if survivor is None else survivor.pk}\t{t(change.note) if change.note else ''}\t"
                    f"{'t' if change.is_correction else 'f'}\t{change.version}\t"
                    f"{values['note_digest']}\t{chain_hash}{change_tail}\n"
                )
        return _CopyChunk(references=references, case_lines=case_lines, change_text="".join(change_lines))


class _CopyStream:
    """Writes chunks with COPY from a worker thread, so PostgreSQL stores one chunk while the next is generated.

    The worker uses the caller's connection, inside the caller's transaction;
    the caller must not use the connection until the stream is closed.
    """

    def __init__(self, pg: psycopg.Connection[Any]) -> None:
        self.pg = pg
        self.case_copy = case_layout().copy_statement()
        self.change_copy = change_layout().copy_statement()
        # Two chunks waiting at most: enough to keep both sides busy, little memory.
        self.queue: queue.Queue[_CopyChunk | None] = queue.Queue(maxsize=2)
        self.cancelled = threading.Event()
        self.error: BaseException | None = None
        self.worker = threading.Thread(target=self._work, name="generate_cases COPY", daemon=True)

    def __enter__(self) -> _CopyStream:
        self.worker.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            self.cancelled.set()
        self._put(None)
        self.worker.join()
        if exc is None and self.error is not None:
            raise self.error

    def send(self, chunk: _CopyChunk) -> None:
        self._put(chunk)

    def _put(self, item: _CopyChunk | None) -> None:
        while self.worker.is_alive():
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        if item is not None and self.error is not None:
            raise self.error

    def _work(self) -> None:
        try:
            with self.pg.cursor() as cursor:
                while (chunk := self.queue.get()) is not None:
                    if self.cancelled.is_set():
                        continue
                    self._settle_references(cursor, chunk)
                    with cursor.copy(self.case_copy) as copy:
                        copy.write("".join(chunk.case_lines))
                    with cursor.copy(self.change_copy) as copy:
                        copy.write(chunk.change_text)
        except BaseException as exc:  # handed to the caller's thread
            self.error = exc

    @staticmethod
    def _settle_references(cursor: psycopg.Cursor[Any], chunk: _CopyChunk) -> None:
        """Replace any reference that a case already holds (earlier chunks included: same transaction)."""
        query = f"SELECT reference FROM {Case._meta.db_table} WHERE reference = ANY(%s)"  # noqa: S608
        taken = {row[0] for row in cursor.execute(query, [chunk.references])}
        in_chunk = set(chunk.references)
        while taken:
            for index, reference in enumerate(chunk.references):
                if reference in taken:
                    replacement = next(iter(_random_references(1) - in_chunk), reference)
                    in_chunk.add(replacement)
                    chunk.references[index] = replacement
                    chunk.case_lines[index] = chunk.case_lines[index].replace(reference, replacement, 1)
            taken = {row[0] for row in cursor.execute(query, [chunk.references])}
