"""One workbook holding both the cases (its first sheet) and their status changes (another sheet, as a
KoBoToolbox repeat group or a second sheet kept in Excel): the web import reads both.

Every file here is synthetic; the source_refs are invented.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from openpyxl import Workbook

from casework import web_import
from casework.import_models import ImportJob
from casework.models import Case, StatusChange
from tests.test_web_import import confirm, csv_bytes, submit_suggested, the_job, upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_in_process")]

TODAY = dt.date.today()
RECENT = (TODAY - dt.timedelta(days=3)).isoformat()
EARLIER = (TODAY - dt.timedelta(days=10)).isoformat()
CASES = [
    ["source_ref", "sex", "birth_year", "oblast", "reported_on"],
    ["WB-1", "F", 2012, "UA-14", EARLIER],
    ["WB-2", "M", 2013, "UA-65", EARLIER],
]


@pytest.fixture(autouse=True)
def private_dir(settings, tmp_path):
    settings.IMPORT_PRIVATE_DIR = tmp_path / "imports"
    return settings.IMPORT_PRIVATE_DIR


def workbook(sheets: dict[str, list[list[Any]]]) -> bytes:
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_sheet_named_status_changes_is_imported_with_the_cases(
    client, supervisor, private_dir, django_capture_on_commit_callbacks
):
    client.force_login(supervisor)
    changes = [["source_ref", "status", "occurred_on"], ["WB-1", "verified", RECENT], ["WB-2", "verified", RECENT]]
    upload(client, ("register.xlsx", workbook({"Cases": CASES, "Notes": [["anything"]], "Status changes": changes})))
    job = the_job()
    assert (job.events_name, job.events_sheet, job.events_format) == (
        "register.xlsx [Status changes]",
        "Status changes",
        "xlsx",
    )
    assert job.events_headers == ["source_ref", "status", "occurred_on"]
    # The same workbook, not a copy.
    assert (private_dir / str(job.key) / "upload-events").samefile(private_dir / str(job.key) / "upload-cases")
    page = client.get(f"/imports/{job.key}/columns/")
    assert "register.xlsx [Status changes]" in page.text

    submit_suggested(client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.state == ImportJob.State.READY, job.problems
    assert (job.case_count, job.event_count) == (2, 2)
    confirm(client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE
    assert sorted(Case.objects.values_list("status", flat=True)) == ["verified", "verified"]
    assert StatusChange.objects.count() == 2


def test_a_kobo_repeat_group_is_found_by_its_headers_and_its_problems_name_the_sheet(
    client, supervisor, django_capture_on_commit_callbacks
):
    """KoBoToolbox names a repeat group's sheet after the group, and its headers are the questions' labels."""
    client.force_login(supervisor)
    changes = [
        ["Номер справи", "Статус", "Дата зміни", "_index", "_parent_index"],
        ["WB-1", "verified", RECENT, 1, 1],
        ["WB-7", "verified", RECENT, 2, 2],
    ]
    upload(client, ("kobo.xlsx", workbook({"Реєстр": CASES, "group_zminy": changes})))
    job = the_job()
    assert job.events_sheet == "group_zminy" and job.events_name == "kobo.xlsx [group_zminy]"
    mapping = web_import.suggested_mapping(job)["events"]
    assert mapping == {
        "Номер справи": "source_ref",
        "Статус": "status",
        "Дата зміни": "occurred_on",
        "_index": "",
        "_parent_index": "",
    }
    submit_suggested(client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.state == ImportJob.State.INVALID
    text = client.get(f"/imports/{job.key}/").text
    assert "kobo.xlsx [group_zminy]:3: Номер справи (source_ref): No case with this source_ref in kobo.xlsx" in text
    assert not Case.objects.exists()


def test_a_sheet_that_is_not_of_status_changes_is_left_alone(client, supervisor):
    client.force_login(supervisor)
    notes = [["who", "what"], ["caseworker", "called twice"]]
    upload(client, ("register.xlsx", workbook({"Cases": CASES, "Notes": notes})))
    job = the_job()
    assert (job.events_name, job.events_sheet, job.events_headers) == ("", "", [])


def test_a_status_changes_file_of_its_own_wins_over_a_sheet_of_the_workbook(client, supervisor):
    client.force_login(supervisor)
    changes = [["source_ref", "status", "occurred_on"], ["WB-1", "verified", RECENT]]
    separate = csv_bytes([["source_ref", "status", "occurred_on"], ["WB-2", "verified", RECENT]])
    upload(client, ("register.xlsx", workbook({"Cases": CASES, "Status changes": changes})), ("changes.csv", separate))
    job = the_job()
    assert (job.events_name, job.events_sheet, job.events_format) == ("changes.csv", "", "csv")


def test_the_organisation_s_remembered_headers_find_the_sheet(client, supervisor, ngo_a):
    from casework.import_models import ImportMapping

    for header, column in (("case", "source_ref"), ("what now", "status"), ("when", "occurred_on")):
        ImportMapping.objects.create(organisation=ngo_a, sheet="events", header=header, column=column)
    client.force_login(supervisor)
    changes = [["Case", "What now", "When"], ["WB-1", "verified", RECENT]]
    upload(client, ("register.xlsx", workbook({"Cases": CASES, "Sheet2": changes})))
    assert the_job().events_sheet == "Sheet2"


def test_only_the_first_sheets_are_looked_at(client, supervisor, monkeypatch):
    from casework.importing import sources

    monkeypatch.setattr(sources, "MAX_SHEETS_LOOKED_AT", 2)
    changes = [["source_ref", "status", "occurred_on"], ["WB-1", "verified", RECENT]]
    client.force_login(supervisor)
    sheets = {"Cases": CASES, "A": [["a"]], "B": [["b"]], "Status changes": changes}
    upload(client, ("register.xlsx", workbook(sheets)))
    assert the_job().events_sheet == ""
    upload(client, ("register.xlsx", workbook({"Cases": CASES, "A": [["a"]], "Status changes": changes})))
    assert the_job().events_sheet == "Status changes"


def test_a_sheet_named_as_status_changes_without_their_columns_is_not_taken(client, supervisor):
    """A "History" of notes would leave columns to match that the sheet does not have."""
    client.force_login(supervisor)
    notes = [["who", "what"], ["caseworker", "called twice"]]
    upload(client, ("register.xlsx", workbook({"Cases": CASES, "History": notes})))
    assert the_job().events_sheet == ""


def test_a_sheet_named_as_status_changes_is_preferred_to_another_with_their_columns(client, supervisor):
    client.force_login(supervisor)
    changes = [["source_ref", "status", "occurred_on"], ["WB-1", "verified", RECENT]]
    upload(client, ("register.xlsx", workbook({"Cases": CASES, "Copy": changes, "Зміни статусу": changes})))
    assert the_job().events_sheet == "Зміни статусу"
