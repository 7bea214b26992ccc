"""Files as people keep them (CSV from Excel or KoBoToolbox, XLSX) turned into the importer's CSV.

The importer (``plan_import``) reads UTF-8 CSV files whose header names its
columns. A web upload may be XLSX, CSV with ``;`` between values (KoBoToolbox's
default), in UTF-8 with or without a byte order mark or in Windows-1251, with
the question labels as headers in Ukrainian or English, group prefixes
(``case/oblast``) and columns the importer does not know (``_uuid``,
``_submission_time``). Here such a file is read a row at a time (openpyxl's
read-only mode, a CSV reader over the file: memory stays flat whatever its
size) and written again with the importer's columns only, as chosen on the
mapping page.

Line numbers are kept: line N of the file written is row N of the file
uploaded (a blank line stands for a blank row, and a row whose quoted values
spanned several lines is followed by as many blank lines), so that every
problem the importer finds names the line the user sees in their file.
Values are never put in messages.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import logging
import re
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from django.utils.translation import gettext as _

from casework.importing.common import CASE_COLUMNS, EVENT_COLUMNS, ImportProblem

logger = logging.getLogger(__name__)

CSV = "csv"
XLSX = "xlsx"
CHUNK = 1024 * 1024

# The labels of each of the importer's columns, in English and Ukrainian, as a form's questions might
# read; compared after ``header_key`` and without a group prefix. The columns' own names are added below.
KNOWN_LABELS: dict[str, dict[str, tuple[str, ...]]] = {
    "cases": {
        "source_ref": (
            "source ref",
            "case id",
            "case number",
            "case no",
            "our reference",
            "own reference",
            "номер справи",
            "ідентифікатор справи",
            "власний номер",
            "внутрішній номер",
            "код справи",
        ),
        "sex": ("gender", "sex of the child", "стать", "стать дитини"),
        "birth_year": ("birth year", "year of birth", "рік народження"),
        "oblast": ("region", "oblast code", "область", "код області", "регіон"),
        "reported_on": (
            "date reported",
            "reported on",
            "report date",
            "date of report",
            "дата повідомлення",
            "дата звернення",
        ),
        "displaced_on": (
            "date displaced",
            "displaced on",
            "date of displacement",
            "date of deportation",
            "дата переміщення",
            "дата депортації",
            "дата вивезення",
        ),
        "placement": ("placement", "type of placement", "розміщення", "тип розміщення"),
        "institution": ("institution", "institution code", "заклад", "код закладу", "установа"),
        "source": ("source", "source of information", "джерело", "джерело інформації"),
        "given_name": ("given name", "first name", "name", "ім'я", "ім'я дитини"),
        "family_name": ("family name", "surname", "last name", "прізвище", "прізвище дитини"),
        "patronymic": ("patronymic", "middle name", "по батькові"),
        "birth_date": ("birth date", "date of birth", "dob", "дата народження"),
        "birth_place": ("birth place", "place of birth", "місце народження"),
    },
    "events": {
        "source_ref": ("source ref", "case id", "case number", "номер справи", "власний номер", "код справи"),
        "status": ("status", "new status", "статус", "новий статус"),
        "occurred_on": ("occurred on", "date", "date of change", "дата", "дата зміни"),
        "via": ("via", "intermediary", "through", "посередник", "через"),
        "duplicate_of": ("duplicate of", "дублікат", "дублікат справи"),
        "note": ("note", "notes", "comment", "примітка", "коментар"),
    },
}
SHEET_COLUMNS: dict[str, tuple[str, ...]] = {"cases": CASE_COLUMNS, "events": EVENT_COLUMNS}

_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "`": "'", "‘": "'"})
_TRAILING = re.compile(r"[\s:?*]+$")


class SourceProblem(Exception):
    """The file cannot be read at all (not a spreadsheet, no header, an encoding not understood)."""

    def __init__(self, problem: ImportProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def header_key(header: str) -> str:
    """A header as compared and remembered: spacing, letter case, apostrophes and a trailing ":" ignored."""
    return _TRAILING.sub("", " ".join(header.translate(_APOSTROPHES).split()).casefold())[:200]


def _label(header: str) -> str:
    # KoBoToolbox names a question in a group "group/question" (or "group/subgroup/question").
    return header_key(header.rsplit("/", 1)[-1]).replace("_", " ")


def _known() -> dict[str, dict[str, str]]:
    known: dict[str, dict[str, str]] = {}
    for sheet, labels in KNOWN_LABELS.items():
        table = known[sheet] = {}
        for column in SHEET_COLUMNS[sheet]:
            table[column.replace("_", " ")] = column
            for label in labels.get(column, ()):
                table.setdefault(header_key(label), column)
    return known


_KNOWN = _known()


def suggest(sheet: str, headers: Sequence[str], remembered: Mapping[str, str]) -> dict[str, str]:
    """Each header's column ("" to ignore it): the organisation's remembered answer, else a known label.

    A column is suggested for one header only (the first); KoBoToolbox's own columns (``_uuid``,
    ``_submission_time``, ``start``, ``end`` ...) and unknown headers are ignored.
    """
    columns = set(SHEET_COLUMNS[sheet])
    taken: set[str] = set()
    mapping: dict[str, str] = {}
    for header in headers:
        key = header_key(header)
        column = remembered.get(key)
        if column is None:
            column = "" if header.strip().startswith("_") else _KNOWN[sheet].get(_label(header), "")
        if column not in columns or column in taken:
            column = ""
        if column:
            taken.add(column)
        mapping[header] = column
    return mapping


# --- reading a file a row at a time ------------------------------------------------------------


def detect_format(name: str, path: Path) -> str | None:
    """``xlsx`` (a zip holding a workbook), ``csv`` (by its name), or None."""
    with path.open("rb") as file:
        head = file.read(4)
    if head == b"PK\x03\x04":
        return XLSX if zipfile.is_zipfile(path) else None
    if name.lower().endswith((".csv", ".txt")):
        return CSV
    return None


def _is_utf8(path: Path) -> tuple[bool, int]:
    """Whether the whole file is UTF-8, read a chunk at a time; else the line of the first bad byte."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return False, line + chunk[: exc.start].count(b"\n")
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False, line
    return True, 0


# Windows-1251 decodes almost any bytes: take it only when the text reads as Ukrainian (or Russian) would.
_CP1251_PLAUSIBLE = re.compile(r"[\x00-\x7fА-яІіЇїЄєҐґЁё«»—–№’“”„…\xa0]*")


def _encoding(path: Path, name: str) -> str:
    utf8, line = _is_utf8(path)
    if utf8:
        return "utf-8-sig"  # spreadsheet programs often start "CSV UTF-8" files with a byte order mark
    with path.open("rb") as file:
        sample = file.read(CHUNK)
    try:
        text = sample.decode("cp1251")
    except UnicodeDecodeError:
        text = ""
    if text and _CP1251_PLAUSIBLE.fullmatch(text):
        return "cp1251"
    raise SourceProblem(
        ImportProblem(
            name,
            line,
            None,
            _("The file is not UTF-8 text (invalid bytes on this line). Save it as “CSV UTF-8” and try again."),
        )
    )


def _delimiter(first_line: str) -> str:
    # KoBoToolbox exports CSV with ";" by default; Excel uses "," or ";" by locale.
    counts = {delimiter: first_line.count(delimiter) for delimiter in (",", ";", "\t")}
    return max(counts, key=lambda delimiter: counts[delimiter]) if any(counts.values()) else ","


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split()) if isinstance(value, str) and ("\n" in value or "\r" in value) else str(value)


def _csv_rows(path: Path, name: str) -> Iterator[tuple[int, int, list[str]]]:
    """(line, lines spanned, values) of each row; the header is line 1."""
    encoding = _encoding(path, name)
    with path.open("r", encoding=encoding, newline="") as text:
        first = text.readline()
        delimiter = _delimiter(first)
        text.seek(0)
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        previous = 0
        try:
            for cells in reader:
                line, previous = previous + 1, reader.line_num
                yield line, previous - line + 1, [_cell(cell) for cell in cells]
        except csv.Error as exc:
            raise SourceProblem(
                ImportProblem(
                    name,
                    previous + 1,
                    None,
                    _("Malformed CSV from this line on (%(error)s); the rest of the file was not read.")
                    % {"error": exc},
                )
            ) from None


# A workbook's parts, unpacked, may be at most this many times the upload's limit, and no part may unpack to
# more than this many times its packed size: past either it is a "zip bomb", not a spreadsheet.
XLSX_UNPACKED_FACTOR = 20
XLSX_MAX_RATIO = 200
# A row wider than this is not a case register's sheet (and would cost memory to read).
MAX_COLUMNS = 500


def _xlsx_refusal(path: Path) -> str | None:
    """Why the workbook is not even opened: its parts unpack to far more than any real sheet would."""
    from django.conf import settings

    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return None  # openpyxl says it is not a workbook
    unpacked = sum(part.file_size for part in parts)
    if unpacked > XLSX_UNPACKED_FACTOR * settings.IMPORT_MAX_UPLOAD_BYTES or any(
        part.file_size > XLSX_MAX_RATIO * max(part.compress_size, 1) and part.file_size > 1024 * 1024 for part in parts
    ):
        return _("This workbook unpacks to far more than its size: it cannot be read. Save it again as XLSX.")
    return None


def _open_workbook(path: Path, name: str) -> tuple[Any, IO[bytes]]:
    """The workbook in read-only mode (rows parsed as they are asked for) and its open file."""
    from openpyxl import load_workbook

    refusal = _xlsx_refusal(path)
    if refusal is not None:
        raise SourceProblem(ImportProblem(name, None, None, refusal))
    file = path.open("rb")  # a file, not a path: openpyxl judges a path by its extension
    try:
        return load_workbook(file, read_only=True, data_only=True), file
    except Exception:  # openpyxl raises many kinds for a damaged or foreign file
        file.close()
        raise SourceProblem(
            ImportProblem(name, None, None, _("This is not an XLSX workbook that can be read. Save it again as XLSX."))
        ) from None


# The names a workbook's sheet of status changes goes by (compared as ``header_key`` does, "_" as a space).
STATUS_SHEET_NAMES = frozenset(
    {
        "events",
        "status changes",
        "changes",
        "status history",
        "history",
        "statuses",
        "зміни статусу",
        "зміни статусів",
        "зміни",
        "історія",
        "історія статусів",
        "статуси",
    }
)


# A workbook's sheets after the first looked at for the status changes (a form's repeat groups are a few).
MAX_SHEETS_LOOKED_AT = 20


def status_sheet(path: Path, name: str, remembered: Mapping[str, str]) -> str | None:
    """The title of the workbook's sheet of status changes, if it has one besides its first (the cases): among
    the sheets whose header row has the status changes' required columns (known labels, or the organisation's
    ``remembered`` answers), the first named as one (``STATUS_SHEET_NAMES``), else the first. A sheet without
    those columns is never taken, whatever its name: a "History" of notes would leave the user with columns
    to match that do not exist. None if there is none."""
    from casework.importing.common import EVENT_REQUIRED

    workbook, file = _open_workbook(path, name)
    try:
        candidates = [
            sheet
            for sheet in workbook.worksheets[1 : 1 + MAX_SHEETS_LOOKED_AT]
            if (headers := _first_row(sheet)) is not None
            and set(suggest("events", headers, remembered).values()) >= EVENT_REQUIRED
        ]
        named = [sheet for sheet in candidates if _label(sheet.title) in STATUS_SHEET_NAMES]
        chosen = (named or candidates or [None])[0]
        return None if chosen is None else str(chosen.title)
    finally:
        workbook.close()
        file.close()


def _first_row(sheet: Any) -> list[str] | None:
    """A sheet's header row, or None when it cannot be read (a damaged sheet is not the one looked for)."""
    try:
        first = next(iter(sheet.iter_rows(min_row=1, max_row=1, max_col=MAX_COLUMNS, values_only=True)), ())
    except Exception:  # openpyxl raises many kinds for a damaged part
        logger.info("A sheet of an uploaded workbook could not be read", exc_info=True)
        return None
    return [_cell(value).strip() for value in first]


def _xlsx_rows(path: Path, name: str, sheet_title: str | None = None) -> Iterator[tuple[int, int, list[str]]]:
    workbook, file = _open_workbook(path, name)
    line = 0
    try:
        try:
            sheet = workbook[sheet_title] if sheet_title else workbook.worksheets[0]
            # The rows as the file holds them, not padded to the size the sheet claims.
            sheet.reset_dimensions()
            found = iter(sheet.iter_rows(values_only=True))
        except Exception:
            raise SourceProblem(
                ImportProblem(
                    name, None, None, _("This workbook has no sheet that can be read. Save it again as XLSX.")
                )
            ) from None
        while True:
            try:
                values = next(found)
            except StopIteration:
                return
            except Exception:  # a damaged part: XML cut off, a bad checksum
                raise SourceProblem(
                    ImportProblem(
                        name,
                        line + 1,
                        None,
                        _("The workbook is damaged from this row on; the rest was not read. Save it again as XLSX."),
                    )
                ) from None
            line += 1
            if len(values) > MAX_COLUMNS:
                raise SourceProblem(
                    ImportProblem(
                        name,
                        line,
                        None,
                        _("This row has more than %(count)s columns: it is not a sheet of cases.")
                        % {"count": MAX_COLUMNS},
                    )
                )
            yield line, 1, [_cell(value) for value in values]
    finally:
        workbook.close()
        file.close()


def rows(path: Path, fmt: str, name: str, sheet: str = "") -> Iterator[tuple[int, int, list[str]]]:
    """The file's rows as (line, lines spanned, values); raises ``SourceProblem`` when it cannot be read.
    ``sheet``: a workbook's sheet by its title (the first sheet without one)."""
    return _xlsx_rows(path, name, sheet or None) if fmt == XLSX else _csv_rows(path, name)


def read_headers(path: Path, fmt: str, name: str, sheet: str = "") -> list[str]:
    """The header row (line 1), without trailing empty cells; ``SourceProblem`` without one."""
    for _line, _span, values in rows(path, fmt, name, sheet):
        headers = [value.strip() for value in values]
        while headers and not headers[-1]:
            headers.pop()
        if headers:
            return headers
        break
    raise SourceProblem(
        ImportProblem(name, 1, None, _("The first line must name the columns; it is empty or the file is empty."))
    )


def convert(*, path: Path, fmt: str, name: str, mapping: Mapping[str, str], out: IO[str], sheet: str = "") -> int:
    """Write the file again with its mapped columns named as the importer's, line for line; returns the rows."""
    writer = csv.writer(out, lineterminator="\n")
    picked: list[tuple[int, str]] = []
    count = 0
    for line, span, values in rows(path, fmt, name, sheet):
        if line == 1:
            headers = [value.strip() for value in values]
            picked = [(position, mapping[header]) for position, header in enumerate(headers) if mapping.get(header)]
            writer.writerow([column for _position, column in picked])
        else:
            cells = [values[position].strip() if position < len(values) else "" for position, _column in picked]
            if any(cells):
                writer.writerow(cells)
                count += 1
            else:
                out.write("\n")  # a blank row stays a blank line: the lines keep their numbers
        if span > 1:
            out.write("\n" * (span - 1))
    return count


def open_named(path: Path, display: str) -> io.FileIO:
    """The converted file, opened for the importer under the uploaded file's name (its messages name it)."""
    file = io.FileIO(path, "r")
    file.name = display
    return file
