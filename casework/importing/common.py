"""What the import's steps share: the files' columns, the results and the problems found."""

from __future__ import annotations

import datetime as dt
import os
import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Protocol, runtime_checkable

from accounts.models import Organisation
from casework.identifying import DETAIL_FIELDS, IdentifyingDetails
from casework.importing.compact import CaseStates
from casework.models import Placement, Source, Status

# A path, or an open binary file (e.g. an uploaded file) whose ``name`` names it in messages.
ImportSource = str | os.PathLike[str] | IO[bytes]

SOURCE_REF_KIND = "source_ref"
RECORDED_VIA = "import"

CASE_COLUMNS: tuple[str, ...] = (
    "source_ref",
    "sex",
    "birth_year",
    "oblast",
    "reported_on",
    "displaced_on",
    "placement",
    "institution",
    "source",
    # Identifying details (casework.identifying): optional, encoded by their receiver, never stored.
    *DETAIL_FIELDS,
)
CASE_REQUIRED: frozenset[str] = frozenset({"source_ref", "sex", "oblast", "reported_on"})
EVENT_COLUMNS: tuple[str, ...] = ("source_ref", "status", "occurred_on", "via", "duplicate_of", "note")
EVENT_REQUIRED: frozenset[str] = frozenset({"source_ref", "status", "occurred_on"})

# check_move and validate_case_values name model fields; the files name columns.
MOVE_FIELD_COLUMNS = {"to_status": "status"}
CASE_FIELD_COLUMNS = {"displaced_precision": "displaced_on"}

CODE_LISTS: dict[str, list[str]] = {"placement": Placement.values, "source": Source.values}
# Choices' ``values`` is rebuilt on every access: too slow to ask per row.
STATUSES: frozenset[str] = frozenset(Status.values)

DAY_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
MONTH_RE = re.compile(r"(\d{4})-(\d{2})", re.ASCII)
YEAR_RE = re.compile(r"\d{4}", re.ASCII)

# Rows per INSERT; large batches keep the number of round trips low.
DEFAULT_BATCH_SIZE = 5000
# How many rows pass between two progress bar updates (updating per row costs more than the row).
PROGRESS_STEP = 1000


@runtime_checkable
class ProgressHook(Protocol):
    """Where the steps report their progress instead of a terminal's bar (e.g. a web import's job row)."""

    def start(self, *, total: int, desc: str) -> None: ...

    def update(self, count: int) -> None: ...


# --- results and errors ------------------------------------------------------


@dataclass(frozen=True)
class ImportProblem:
    """One reason a file cannot be imported. (Not named ImportError: that is a Python builtin.)"""

    file: str
    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.column}: {self.message}" if self.column else f"{where}: {self.message}"


class ImportErrors(Exception):
    """The files cannot be imported; ``errors`` lists every problem found. Nothing was written."""

    def __init__(self, errors: Sequence[ImportProblem]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


@dataclass(slots=True)
class PlannedCase:
    line: int
    source_ref_hash: str
    sex: str
    birth_year: int | None
    oblast: str
    reported_on: dt.date
    displaced_on: dt.date | None
    displaced_precision: str
    placement: str
    institution_id: int | None
    source: str
    # Kept in memory only, for the file of references (source_ref -> reference) and the details'
    # receivers; never written to the database.
    source_ref: str = ""
    details: IdentifyingDetails | None = None
    # After replaying the case's events.
    status: str = Status.REPORTED.value
    version: int = 1


@dataclass
class ImportPlan:
    """Checked files, ready for ``apply_import``: what was learnt of them, not their rows.

    The rows are read again from the files when they are written (a file changed in between is
    refused); what the checks learnt is kept in a few arrays (``compact.CaseStates``) and small maps.
    """

    organisation: Organisation
    cases_file: str
    events_file: str | None
    cases_source: ImportSource
    events_source: ImportSource | None
    case_count: int
    event_count: int
    detail_count: int
    today: dt.date
    planned_at: dt.datetime
    fingerprints: tuple[str, str]
    states: CaseStates
    # Per status change, in file order: 1 if the service called it a correction.
    corrections: bytearray
    # Per status change, in file order: its case's ordinal; its surviving case (0: none; ordinal + 1; -id).
    event_cases: array[int]
    event_survivors: array[int]
    institutions: dict[str, int]
    organisations: dict[str, int]
    # Surviving cases imported earlier (duplicate_of): digest -> id, and (line, id) to check them again.
    survivors: dict[str, int]
    survivor_lines: list[tuple[int, int]]

    @property
    def cases(self) -> list[PlannedCase]:
        """The planned cases, read from the file again (to inspect a small plan; a pass over the file)."""
        from casework.importing.writing import planned_cases

        return list(planned_cases(self))


@dataclass(frozen=True)
class ImportResult:
    cases: int
    events: int
    # (source_ref, reference) of every imported case, in file order.
    references: list[tuple[str, str]] = field(default_factory=list)
