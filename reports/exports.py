"""The figures as files: JSON, CSV, HXL (CSV with a row of hashtags) and XLSX.

JSON is the exact form of DESIGN.md section 4. The tables are tidy: one row
per (breakdown, key), one column per kind of key, so a spreadsheet filter or
a HXL tool can pick rows by breakdown. A hidden (suppressed) value is an
empty cell, and the ``suppressed`` column names the hidden measures of the row.

    date        as-of date of the figures
    breakdown   total | oblast | sex | age_band | intermediary | month
    adm1_code   ISO 3166-2:UA code of the oblast (oblast rows)
    sex         F, M or U (sex rows)
    age_band    0-4 ... 18+, unknown (age_band rows)
    intermediary  slug of the intermediary, or unattributed (intermediary rows)
    month       YYYY-MM (month rows: cumulative values at the month's end)
    reported, repatriated, outstanding, median_days_to_return
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

from django.utils.translation import gettext
from openpyxl import Workbook
from openpyxl.styles import Font

from reports.figures import Figures

COLUMNS: tuple[tuple[str, str], ...] = (
    ("date", "#date"),
    ("breakdown", "#meta+breakdown"),
    ("adm1_code", "#adm1+code"),
    ("sex", "#group+sex"),
    ("age_band", "#group+age"),
    ("intermediary", "#org+intermediary"),
    ("month", "#date+month"),
    ("reported", "#affected+children+reported"),
    ("repatriated", "#affected+children+returned"),
    ("outstanding", "#affected+children+outstanding"),
    ("median_days_to_return", "#indicator+days+median"),
    ("suppressed", "#meta+suppressed"),
)
HEADER = [name for name, _tag in COLUMNS]
HASHTAGS = [tag for _name, tag in COLUMNS]
MEASURES = ("reported", "repatriated", "outstanding", "median_days_to_return")


def to_json(figures: Figures) -> str:
    return json.dumps(figures, ensure_ascii=False, indent=2) + "\n"


def rows(figures: Figures) -> Iterator[dict[str, Any]]:
    """The tidy rows of a figures result (exact or published)."""
    date = figures["as_of"]

    def row(breakdown: str, key_column: str | None = None, key: str = "", **values: Any) -> dict[str, Any]:
        result: dict[str, Any] = dict.fromkeys(HEADER, "")
        result.update(date=date, breakdown=breakdown)
        if key_column:
            result[key_column] = key
        hidden = [name for name in MEASURES if name in values and values[name] is None]
        for name, value in values.items():
            result[name] = "" if value is None else value
        result["suppressed"] = " ".join(hidden)
        return result

    totals = figures["totals"]
    yield row(
        "total",
        reported=totals["reported"],
        repatriated=totals["repatriated"],
        outstanding=totals["outstanding"],
        median_days_to_return=figures["median_days_to_return"],
    )
    for breakdown, key_column, name in (
        ("oblast", "adm1_code", "by_oblast"),
        ("sex", "sex", "by_sex"),
        ("age_band", "age_band", "by_age_band"),
    ):
        for key, cell in figures[name].items():
            yield row(breakdown, key_column, key, reported=cell["reported"], repatriated=cell["repatriated"])
    for key, value in figures["by_via"].items():
        yield row("intermediary", "intermediary", key, repatriated=value)
    for month in figures["monthly"]:
        yield row("month", "month", month["month"], reported=month["reported"], repatriated=month["repatriated"])


def to_csv(figures: Figures, *, hxl: bool = False) -> str:
    """CSV; with ``hxl`` a row of HXL hashtags under the header (https://hxlstandard.org/)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HEADER, lineterminator="\r\n")
    writer.writeheader()
    if hxl:
        writer.writerow(dict(zip(HEADER, HASHTAGS, strict=True)))
    writer.writerows(rows(figures))
    return buffer.getvalue()


def to_xlsx(figures: Figures, *, about: Sequence[tuple[str, str]]) -> bytes:
    """A workbook: the tidy table on the first sheet, what it is on the second (sheet names translated)."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = gettext("Figures")
    sheet.append(HEADER)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for record in rows(figures):
        sheet.append([None if record[name] == "" else record[name] for name in HEADER])
    sheet.freeze_panes = "A2"
    for column, width in zip("ABCDEFGHIJKL", (11, 13, 10, 6, 9, 15, 9, 10, 12, 12, 12, 22), strict=True):
        sheet.column_dimensions[column].width = width
    notes = workbook.create_sheet(gettext("About"))
    for label, value in about:
        notes.append([label, value])
    notes.column_dimensions["A"].width = 34
    notes.column_dimensions["B"].width = 80
    for cell in notes["A"]:
        cell.font = Font(bold=True)
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()
