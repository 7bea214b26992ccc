"""Reading the CSV files: rows by line, values parsed, and the bulk lookups the plan needs."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Never

from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext as _
from tqdm import tqdm

from accounts.models import Organisation
from casework.importing.common import CODE_LISTS, DAY_RE, MONTH_RE, ImportProblem, ImportSource, ProgressHook
from casework.models import Case, DisplacedPrecision

if TYPE_CHECKING:
    from _typeshed import SupportsWrite


# --- reading CSV ---------------------------------------------------------------


class Problems:
    """The problems of one file, kept in line and column order whatever order they are found in."""

    def __init__(self, name: str, columns: Sequence[str]) -> None:
        self.name = name
        self._rank = {column: rank for rank, column in enumerate(columns)}
        self._found: list[tuple[int, int, int, ImportProblem]] = []

    def add(self, line: int | None, column: str | None, message: str) -> None:
        problem = ImportProblem(file=self.name, line=line, column=column, message=message)
        rank = self._rank.get(column, -1) if column else -1
        self._found.append((line or 0, rank, len(self._found), problem))

    def __bool__(self) -> bool:
        return bool(self._found)

    def sorted(self) -> list[ImportProblem]:
        return [problem for *_key, problem in sorted(self._found, key=lambda found: found[:3])]


def display_name(source: ImportSource, default: str) -> str:
    if isinstance(source, str | os.PathLike):
        return Path(source).name
    name = getattr(source, "name", None)
    return Path(name).name if isinstance(name, str) and name else default


class _Hashing(io.RawIOBase):
    """A binary file read through, its bytes hashed on the way (to tell a file changed between two reads)."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.hash.update(data)
        return size


@contextmanager
def open_binary(source: ImportSource) -> Iterator[IO[bytes]]:
    """The file from its start; a path is opened and closed here, an open file is left open (its owner's)."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as handle:
            yield handle
        return
    if source.seekable():
        source.seek(0)
    yield source


def count_lines(source: ImportSource) -> int:
    """About how many rows a file has (its line breaks), read in blocks: a progress bar's total.

    An open file that cannot be read again (not seekable) is not counted: 0."""
    if not isinstance(source, str | os.PathLike) and not source.seekable():
        return 0
    try:
        with open_binary(source) as handle:
            return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return 0


def _undecodable_line(source: ImportSource) -> int:
    """The first line that is not UTF-8."""
    with open_binary(source) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


def _not_utf8() -> str:
    return _("The file is not UTF-8 text (invalid bytes on this line). Save it as “CSV UTF-8” and try again.")


def _malformed(error: csv.Error) -> str:
    return _("Malformed CSV from this line on (%(error)s); the rest of the file was not read.") % {"error": error}


class TableReader:
    """A CSV file read a row at a time: ``(line, {column: stripped value})``; the header is line 1.

    ``open`` reads the header and says whether the file can be used (its problems added otherwise);
    iterating gives the data rows one by one, so memory does not grow with the file. Once every row
    was read, ``fingerprint`` is the SHA-256 of the file's bytes.
    """

    def __init__(
        self, source: ImportSource, *, problems: Problems, columns: Sequence[str], required: frozenset[str]
    ) -> None:
        self.source = source
        self.problems = problems
        self.columns = columns
        self.required = required
        self.fingerprint = ""
        self.columns_given: frozenset[str] = frozenset()
        self._stack = ExitStack()
        self._hashing: _Hashing | None = None
        self._reader: Any = None
        self._header: list[str] = []
        self._absent: dict[str, str] = {}

    def __enter__(self) -> TableReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def open(self) -> bool:
        problems = self.problems
        try:
            raw = self._stack.enter_context(open_binary(self.source))
        except OSError as exc:
            problems.add(None, None, _("Cannot read the file: %(error)s.") % {"error": exc.strerror or exc})
            return False
        self._hashing = _Hashing(raw)
        # utf-8-sig: spreadsheet programs often start "CSV UTF-8" files with a byte order mark.
        text = io.TextIOWrapper(io.BufferedReader(self._hashing, 1 << 16), encoding="utf-8-sig", newline="")
        self._reader = reader = csv.reader(text, strict=True)
        listing = ", ".join(self.columns)
        header: list[str] | None = None
        try:
            for cells in reader:
                if header is None:
                    header = [name.strip().lower() for name in cells]
                if any(cell.strip() for cell in cells):
                    break
            else:
                header = None  # nothing but blank lines
        except UnicodeDecodeError:
            problems.add(_undecodable_line(self.source), None, _not_utf8())
            return False
        except csv.Error as exc:
            problems.add(1, None, _malformed(exc))
            return False
        if header is None:
            problems.add(
                None,
                None,
                _("The file is empty: its first line must name the columns (%(columns)s).") % {"columns": listing},
            )
            return False
        if not set(header) & set(self.columns):
            problems.add(
                1, None, _("The first line must name the columns (%(columns)s); it does not.") % {"columns": listing}
            )
            return False
        seen: set[str] = set()
        for position, name in enumerate(header, start=1):
            if not name:
                problems.add(1, None, _("Column %(position)s has no name.") % {"position": position})
            elif name in seen:
                problems.add(1, name, _("This column appears more than once."))
            elif name not in self.columns:
                problems.add(1, name, _("Unknown column. The columns are: %(columns)s.") % {"columns": listing})
            seen.add(name)
        for name in self.columns:
            if name in self.required and name not in seen:
                problems.add(1, name, _("Missing column."))
        if problems:
            return False
        self._header = header
        self.columns_given = frozenset(header)
        self._absent = {name: "" for name in self.columns if name not in seen}
        return True

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        reader, header, absent, problems = self._reader, self._header, self._absent, self.problems
        width = len(header)
        previous = reader.line_num  # a quoted value may span lines: a row starts after the previous one ends
        strip = str.strip
        try:
            for cells in reader:
                line, previous = previous + 1, reader.line_num
                values = list(map(strip, cells))
                if not any(values):
                    continue  # a blank line
                if len(values) != width:
                    problems.add(
                        line,
                        None,
                        _("This line has %(found)s fields; the header has %(expected)s.")
                        % {"found": len(values), "expected": width},
                    )
                    continue
                row = dict(zip(header, values, strict=True))
                if absent:
                    row.update(absent)
                yield line, row
        except UnicodeDecodeError:
            problems.add(_undecodable_line(self.source), None, _not_utf8())
        except csv.Error as exc:
            problems.add(previous + 1, None, _malformed(exc))
        else:
            assert self._hashing is not None
            self.fingerprint = self._hashing.hash.hexdigest()


# --- parsing values ------------------------------------------------------------


def parse_day(value: str) -> dt.date:
    """A ``YYYY-MM-DD`` date; ``ValueError`` with a message for the file's author otherwise."""
    # fromisoformat is fast but also takes other ISO 8601 forms (20230131, 2023-W05-2): check the shape first.
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            if DAY_RE.fullmatch(value):
                raise ValueError(_("This is not a real date: check the day and the month.")) from None
    raise ValueError(_("Give the date as YYYY-MM-DD, e.g. 2023-01-31."))


def parse_displaced(value: str) -> tuple[dt.date, str]:
    """``YYYY-MM`` (kept as the 1st of the month) or ``YYYY-MM-DD``, with its precision."""
    month = MONTH_RE.fullmatch(value)
    if month is not None:
        try:
            return dt.date(int(month[1]), int(month[2]), 1), DisplacedPrecision.MONTH.value
        except ValueError:
            raise ValueError(_("This is not a real month.")) from None
    if DAY_RE.fullmatch(value) is None:
        raise ValueError(_("Give the month as YYYY-MM or the day as YYYY-MM-DD, or leave it empty."))
    return parse_day(value), DisplacedPrecision.DAY.value


def chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def filter_in(queryset: QuerySet[Case], field_name: str, values: Collection[str]) -> Iterator[QuerySet[Case]]:
    """``queryset`` filtered on ``field_name`` being one of ``values``: in one query or in a few."""
    queryset = queryset.order_by()
    if connection.vendor == "postgresql":
        # One array parameter: thousands of placeholders cost more to send and to plan.
        yield queryset.filter(**{f"{field_name}__in": RawSQL("SELECT unnest(%s::text[])", [list(values)])})
        return
    # SQLite limits the number of parameters in one query.
    size = (connection.features.max_query_params or 1000) - 10
    for chunk in chunks(sorted(values), size):
        yield queryset.filter(**{f"{field_name}__in": chunk})


@dataclass(frozen=True, slots=True)
class Earlier:
    """A case this organisation imported before, found by its source_ref hash."""

    id: int
    reference: str
    status: str


def earlier_imports(organisation: Organisation, hashes: Iterable[str]) -> dict[str, Earlier]:
    """The cases this organisation imported before whose source_ref hash is one of ``hashes``."""
    imported = Case.objects.filter(organisation=organisation, source_ref_hash__isnull=False)
    found: dict[str, Earlier] = {}
    for queryset in filter_in(imported, "source_ref_hash", set(hashes)):
        for digest, pk, reference, status in queryset.values_list("source_ref_hash", "id", "reference", "status"):
            if digest is not None:
                found[digest] = Earlier(id=pk, reference=reference, status=status)
    return found


def taken_references(candidates: Iterable[str]) -> set[str]:
    taken: set[str] = set()
    for queryset in filter_in(Case.objects.all(), "reference", set(candidates)):
        taken.update(queryset.values_list("reference", flat=True))
    return taken


class _HookBar(tqdm):  # type: ignore[type-arg]
    """A bar that draws nothing and tells a ``ProgressHook`` instead."""

    def __init__(self, hook: ProgressHook, *, total: int, desc: str) -> None:
        super().__init__(total=total, desc=desc, disable=True)
        self._hook = hook
        hook.start(total=total, desc=desc)

    def update(self, n: float | None = 1) -> bool | None:
        if n:
            self._hook.update(int(n))
        return None


def progress_bar(progress: SupportsWrite[str] | ProgressHook | None, *, total: int, desc: str) -> tqdm[Never]:
    if isinstance(progress, ProgressHook):
        return _HookBar(progress, total=total, desc=desc)
    # disable=None hides the bar when the stream is not a terminal; delay keeps small files quiet.
    return tqdm(
        total=total,
        desc=desc,
        unit=" rows",
        file=progress,
        disable=True if progress is None else None,
        delay=0.5,
        leave=False,
        dynamic_ncols=True,
    )


def with_codes(column: str, message: str) -> str:
    """Add the accepted codes to a message about a coded column: a file's author needs the codes, not labels."""
    codes = CODE_LISTS.get(column)
    if codes is None:
        return message
    return _("%(message)s Use one of: %(codes)s, or leave it empty.") % {"message": message, "codes": ", ".join(codes)}
