"""The figures as files: JSON, CSV, HXL (CSV with a row of hashtags) and XLSX; exact snapshots and releases.

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
from reports.models import Release

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


# --- releases ----------------------------------------------------------------------------------
#
# A release's files say what they are: every table row names its protection (``exact`` for the headline
# totals, ``protected`` for every cell derived from the noisy cells), a value shown as "fewer than k" is an
# empty cell named in ``fewer_than_k``, and the method and its parameters come first, as ``method`` rows
# (``parameter``, ``value``; in HXL, #meta columns), and in the XLSX "about" sheet.
#
#     date        as-of date of the release
#     release     its number
#     breakdown   method | total | median | oblast | sex | age_band | intermediary | month | days_to_return | lists
#     parameter, value      the method's parameters (method rows)
#     adm1_code, sex, age_band, intermediary, month   the key of a breakdown row
#     days_to_return        a band of days from report to return, e.g. 30-59 (days_to_return rows)
#     reported, repatriated, outstanding, median_days_to_return
#     reported_in_month, repatriated_in_month   month rows: children reported in the month, and returned in it
#     children_on_lists, answered, located, returned, unanswered_90_days   lists rows, per intermediary: children
#                 on its lists, answered, located (or being returned, or returned), returned by answer, and on a
#                 list sent 90 days before without an answer; median_days_to_return there runs from sending
#     protection  exact | protected
#     fewer_than_k  the measures of the row shown as "fewer than k" (k: the min_cell parameter)

RELEASE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("date", "#date"),
    ("release", "#meta+release"),
    ("breakdown", "#meta+breakdown"),
    ("parameter", "#meta+parameter"),
    ("value", "#meta+value"),
    ("adm1_code", "#adm1+code"),
    ("sex", "#group+sex"),
    ("age_band", "#group+age"),
    ("intermediary", "#org+intermediary"),
    ("month", "#date+month"),
    ("days_to_return", "#indicator+days+band"),
    ("reported", "#affected+children+reported"),
    ("repatriated", "#affected+children+returned"),
    ("outstanding", "#affected+children+outstanding"),
    ("median_days_to_return", "#indicator+days+median"),
    ("reported_in_month", "#affected+children+reported+new"),
    ("repatriated_in_month", "#affected+children+returned+new"),
    ("children_on_lists", "#affected+children+listed"),
    ("answered", "#affected+children+listed+answered"),
    ("located", "#affected+children+listed+located"),
    ("returned", "#affected+children+listed+returned"),
    ("unanswered_90_days", "#affected+children+listed+unanswered"),
    ("protection", "#meta+protection"),
    ("fewer_than_k", "#meta+fewer_than_k"),
)
RELEASE_HEADER = [name for name, _tag in RELEASE_COLUMNS]
RELEASE_HASHTAGS = [tag for _name, tag in RELEASE_COLUMNS]
RELEASE_MEASURES = (
    "reported",
    "repatriated",
    "outstanding",
    "median_days_to_return",
    "reported_in_month",
    "repatriated_in_month",
    "children_on_lists",
    "answered",
    "located",
    "returned",
    "unanswered_90_days",
)
# The method's parameters, in the order the files give them.
METHOD_PARAMETERS = (
    "name",
    "rho",
    "sigma",
    "sensitivity",
    "cells_per_child",
    "min_cell",
    "rho_per_year",
    "min_days",
    "releases_per_year_at_most",
    "series_start",
    "day_band_width",
    "lists_sigma",
    "lists_rho_share",
    "list_intermediaries_per_child",
    "opendp",
)


def release_json(release: Release) -> str:
    """The release as stored: the figures with ``release``, ``method`` and ``exact`` (the keys that are exact)."""
    return json.dumps(release.figures, ensure_ascii=False, indent=2) + "\n"


def _method_parameters(figures: Figures) -> list[tuple[str, Any]]:
    method = figures["method"]
    known = [(name, method[name]) for name in METHOD_PARAMETERS if name in method]
    return known + [(name, value) for name, value in method.items() if name not in METHOD_PARAMETERS]


def release_rows(figures: Figures) -> Iterator[dict[str, Any]]:
    """The tidy rows of a release: its method first, then the exact totals, then every protected breakdown."""
    date, number = figures["as_of"], figures.get("release", "")
    exact_keys = set(figures.get("exact", ()))

    def row(breakdown: str, key_column: str | None = None, key: str = "", **values: Any) -> dict[str, Any]:
        result: dict[str, Any] = dict.fromkeys(RELEASE_HEADER, "")
        result.update(date=date, release=number, breakdown=breakdown)
        if key_column:
            result[key_column] = key
        for name, value in values.items():
            result[name] = "" if value is None else value
        if breakdown != "method":
            measures = [name for name in RELEASE_MEASURES if name in values]
            result["fewer_than_k"] = " ".join(name for name in measures if values[name] is None)
            result["protection"] = "exact" if breakdown == "total" and "totals" in exact_keys else "protected"
        return result

    for name, value in _method_parameters(figures):
        yield row("method", parameter=name, value=value)
    totals = figures["totals"]
    yield row(
        "total", reported=totals["reported"], repatriated=totals["repatriated"], outstanding=totals["outstanding"]
    )
    yield row("median", median_days_to_return=figures["median_days_to_return"])
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
        yield row(
            "month",
            "month",
            month["month"],
            reported=month["reported"],
            repatriated=month["repatriated"],
            reported_in_month=month["reported_in_month"],
            repatriated_in_month=month["repatriated_in_month"],
        )
    for band, value in figures["by_days_to_return"].items():
        yield row("days_to_return", "days_to_return", band, repatriated=value)
    for slug, cell in figures.get("lists", {}).items():  # releases made before lists were published have none
        yield row("lists", "intermediary", slug, **cell)


def release_csv(release: Release, *, hxl: bool = False) -> str:
    """CSV of a release; with ``hxl`` the row of HXL hashtags under the header (the method rows are #meta)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RELEASE_HEADER, lineterminator="\r\n")
    writer.writeheader()
    if hxl:
        writer.writerow(dict(zip(RELEASE_HEADER, RELEASE_HASHTAGS, strict=True)))
    writer.writerows(release_rows(release.figures))
    return buffer.getvalue()


def release_about(release: Release) -> list[tuple[str, str]]:
    """What a release is, in words: the XLSX "about" sheet."""
    figures = release.figures
    k = figures["min_cell"]
    about = [
        (gettext("Release"), str(release.number)),
        (gettext("Figures as of"), release.as_of.isoformat()),
        (gettext("Approved"), release.approved_at.strftime("%Y-%m-%d %H:%M UTC") if release.approved_at else "—"),
        (
            gettext("Exact"),
            gettext(
                "The headline totals (reported, repatriated, outstanding of the whole register), whenever they "
                "are at least %(k)s."
            )
            % {"k": k},
        ),
        (
            gettext("Protected"),
            gettext(
                "Every other number: each breakdown cell has random noise added (differential privacy), then the "
                "cells are made whole numbers that add up to the exact totals. They are close to the truth, not "
                "exact."
            ),
        ),
        (gettext("Fewer than k"), gettext("An empty cell: a protected value below %(k)s.") % {"k": k}),
        (
            gettext("Method"),
            gettext(
                "Zero-concentrated differential privacy (ρ-zCDP) with the discrete Gaussian mechanism of OpenDP; "
                "see docs/figures-method.md."
            ),
        ),
    ]
    about += [(f"method.{name}", str(value)) for name, value in _method_parameters(figures)]
    if release.note:
        about.append((gettext("Note"), release.note))
    return about


def release_xlsx(release: Release) -> bytes:
    """A workbook: the release's tidy table (without the method rows) and its "about" sheet."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = gettext("Figures")
    header = [name for name in RELEASE_HEADER if name not in ("parameter", "value")]
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for record in release_rows(release.figures):
        if record["breakdown"] != "method":
            sheet.append([None if record[name] == "" else record[name] for name in header])
    sheet.freeze_panes = "A2"
    notes = workbook.create_sheet(gettext("About"))
    for label, value in release_about(release):
        notes.append([label, value])
    notes.column_dimensions["A"].width = 30
    notes.column_dimensions["B"].width = 100
    for cell in notes["A"]:
        cell.font = Font(bold=True)
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()
