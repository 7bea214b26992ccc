"""The web import (casework.web_import): upload, columns matched, every problem before anything is written,
then all or nothing, with a progress bar and the references file for the importer.

Every file here is synthetic; the names and source_refs are invented.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from openpyxl import Workbook

from accounts.models import Role
from casework import web_import
from casework.import_models import ImportJob, ImportMapping
from casework.models import AccessLog, Case, StatusChange, Task, TaskKind
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_in_process")]

# Invented identifying details: they must never come back in a page, a log or a table.
GIVEN, FAMILY, PATRONYMIC, PLACE = "Ярославина", "Квітчастенко", "Остапівна", "Новоукраїнськ-Тестове"
TODAY = dt.date.today()
RECENT = (TODAY - dt.timedelta(days=3)).isoformat()

CASE_HEADER = ["source_ref", "sex", "birth_year", "oblast", "reported_on", "displaced_on", "placement"]


@pytest.fixture(autouse=True)
def private_dir(settings, tmp_path):
    settings.IMPORT_PRIVATE_DIR = tmp_path / "imports"
    return settings.IMPORT_PRIVATE_DIR


def csv_bytes(rows: list[list[str]], *, delimiter: str = ",", encoding: str = "utf-8") -> bytes:
    text = "\n".join(delimiter.join(row) for row in rows) + "\n"
    return text.encode(encoding)


def xlsx_bytes(rows: list[list[Any]], *, title: str = "cases") -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def upload(client, cases: tuple[str, bytes], events: tuple[str, bytes] | None = None):
    data: dict[str, Any] = {"cases": SimpleUploadedFile(cases[0], cases[1])}
    if events is not None:
        data["events"] = SimpleUploadedFile(events[0], events[1])
    return client.post("/imports/", data)


def the_job() -> ImportJob:
    return ImportJob.objects.latest("created_at")


def submit_suggested(client, job: ImportJob, django_capture_on_commit_callbacks, **changes: str):
    """Post the mapping page as suggested (with ``changes``: field -> column), the check run eagerly."""
    page = client.get(f"/imports/{job.key}/columns/")
    assert page.status_code == 200
    data = {}
    for sheet, headers in (("cases", job.cases_headers), ("events", job.events_headers)):
        suggested = web_import.suggested_mapping(job)[sheet]
        for position, header in enumerate(headers):
            data[f"{sheet}-{position}"] = suggested.get(header, "")
    data.update(changes)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/imports/{job.key}/columns/", data)
    return response


def confirm(client, job: ImportJob, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(f"/imports/{job.key}/confirm/")


def kobo_xlsx(*, with_errors: bool = False) -> bytes:
    """A KoBoToolbox-style export: question labels in Ukrainian with group prefixes, and its own columns."""
    header = [
        "start",
        "end",
        "case/Номер справи",
        "case/Стать",
        "case/Рік народження",
        "case/Область",
        "case/Дата повідомлення",
        "child/Ім'я",
        "child/Прізвище",
        "child/По батькові",
        "child/Дата народження",
        "child/Місце народження",
        "_id",
        "_uuid",
        "_submission_time",
        "_index",
    ]
    submitted = dt.datetime(2024, 5, 1, 10, 30)
    rows: list[list[Any]] = [header]
    for n in range(1, 4):
        rows.append(
            [
                submitted,
                submitted,
                f"KOBO-{n}",
                "F" if n % 2 else "M",
                2012,
                "UA-14",
                dt.datetime.combine(TODAY - dt.timedelta(days=3), dt.time()),
                GIVEN,
                FAMILY,
                PATRONYMIC,
                "2012-03-04",
                PLACE,
                n,
                f"0f0e{n:04d}-aaaa-bbbb-cccc-000000000000",
                submitted,
                n,
            ]
        )
    if with_errors:
        rows[1][3] = "X"  # sex
        rows[2][6] = "31.02.2023"  # reported_on
        rows[3][2] = "KOBO-1"  # a repeated source_ref
        rows[3][10] = "2099-01-01"  # a birth date in the future
    return xlsx_bytes(rows, title="Форма")


@pytest.fixture
def supervisor_b(ngo_b):
    return UserFactory(organisation=ngo_b, role=Role.SUPERVISOR, username="supervisor-b")


# --- who may -------------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in_and_other_roles_are_refused(client, caseworker, org_admin, analyst):
    response = client.get("/imports/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    for user in (caseworker, org_admin, analyst):
        client.force_login(user)
        assert client.get("/imports/").status_code == 403
        response = upload(client, ("cases.csv", csv_bytes([CASE_HEADER])))
        assert response.status_code == 403
    assert not ImportJob.objects.exists()


def test_the_case_list_offers_the_import_to_supervisors_only(client, caseworker, supervisor):
    client.force_login(caseworker)
    assert "/imports/" not in client.get("/cases/").text
    client.force_login(supervisor)
    assert 'href="/imports/"' in client.get("/cases/").text


def test_another_organisations_import_is_absent(client, supervisor, supervisor_b, django_capture_on_commit_callbacks):
    client.force_login(supervisor)
    upload(client, ("kobo.xlsx", kobo_xlsx()))
    job = the_job()
    client.force_login(supervisor_b)
    for path in ("", "columns/", "progress/", "problems.txt", "references.csv"):
        assert client.get(f"/imports/{job.key}/{path}").status_code == 404
    assert client.post(f"/imports/{job.key}/confirm/").status_code == 404
    assert client.post(f"/imports/{job.key}/cancel/").status_code == 404
    assert ImportJob.objects.get(pk=job.pk).state == ImportJob.State.MAPPING


# --- bad files: every problem, nothing written ---------------------------------------------------------


def test_a_bad_csv_lists_every_problem_as_file_line_column_reason_and_writes_nothing(
    client, supervisor, django_capture_on_commit_callbacks
):
    client.force_login(supervisor)
    cases = csv_bytes(
        [
            CASE_HEADER,
            ["A-1", "F", "2012", "UA-14", RECENT, "", ""],
            ["A-2", "X", "2012", "UA-14", RECENT, "", ""],
            ["", "M", "20x2", "UA-14", RECENT, "", ""],
            ["A-1", "F", "2012", "UA-99", "2023-02-31", "", "nowhere"],
        ]
    )
    events = csv_bytes([["source_ref", "status", "occurred_on"], ["A-1", "verified", RECENT], ["A-9", "nope", RECENT]])
    response = upload(client, ("cases.csv", cases), ("events.csv", events))
    assert response.status_code == 302
    job = the_job()
    submit_suggested(client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.state == ImportJob.State.INVALID
    page = client.get(f"/imports/{job.key}/")
    text = page.text
    expected = [
        "cases.csv:3: sex: ",
        "cases.csv:4: source_ref: ",
        "cases.csv:4: birth_year: ",
        "cases.csv:5: source_ref: The same source_ref as line 2",
        "cases.csv:5: oblast: ",
        "cases.csv:5: reported_on: ",
        "cases.csv:5: placement: ",
        "events.csv:3: source_ref: No case with this source_ref in cases.csv",
    ]
    for line in expected:
        assert line in text, line
    assert job.problem_count == len(job.problems.splitlines()) >= len(expected)
    assert Case.objects.count() == 0 and StatusChange.objects.count() == 0
    # Nothing to confirm: the import is refused.
    confirm(client, job, django_capture_on_commit_callbacks)
    assert Case.objects.count() == 0
    problems = client.get(f"/imports/{job.key}/problems.txt")
    assert problems["Content-Disposition"].startswith("attachment")
    assert problems.content.decode().splitlines() == job.problems.splitlines()


def test_a_bad_xlsx_lists_every_problem_by_row_and_the_files_own_headers(
    client, supervisor, django_capture_on_commit_callbacks
):
    client.force_login(supervisor)
    upload(client, ("kobo.xlsx", kobo_xlsx(with_errors=True)))
    job = the_job()
    submit_suggested(client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.state == ImportJob.State.INVALID
    problems = job.problems.splitlines()
    assert any(p.startswith("kobo.xlsx:2: case/Стать (sex): ") for p in problems), problems
    assert any(p.startswith("kobo.xlsx:3: case/Дата повідомлення (reported_on): ") for p in problems), problems
    assert any(
        p.startswith("kobo.xlsx:4: case/Номер справи (source_ref): The same source_ref as line 2") for p in problems
    )
    assert any(
        p.startswith("kobo.xlsx:4: child/Дата народження (birth_date): The date of birth is in the future")
        for p in problems
    )
    text = client.get(f"/imports/{job.key}/").text
    for problem in problems:
        assert problem.split(": ")[0] in text
    assert Case.objects.count() == 0 and StatusChange.objects.count() == 0
    assert GIVEN not in job.problems and "2099-01-01" not in job.problems


def test_thousands_of_problems_are_paged_and_the_page_costs_the_same_queries(
    client, supervisor, django_capture_on_commit_callbacks
):
    client.force_login(supervisor)

    def bad_job(count: int) -> ImportJob:
        rows = [CASE_HEADER] + [[f"B-{n}", "X", "2012", "UA-14", RECENT, "", ""] for n in range(count)]
        upload(client, (f"bad{count}.csv", csv_bytes(rows)))
        job = the_job()
        submit_suggested(client, job, django_capture_on_commit_callbacks)
        job.refresh_from_db()
        assert job.problem_count == count
        return job

    small, large = bad_job(3), bad_job(2500)
    counts = []
    for job in (small, large):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/imports/{job.key}/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    second = client.get(f"/imports/{large.key}/?page=2").text
    assert "bad2500.csv:202: sex" in second and "bad2500.csv:2: sex" not in second


# --- a KoBoToolbox export: matched, checked, imported -------------------------------------------------


def test_a_kobotoolbox_xlsx_is_matched_checked_and_imported_with_its_references(
    client, supervisor, ngo_a, django_capture_on_commit_callbacks, private_dir
):
    client.force_login(supervisor)
    upload(client, ("kobo.xlsx", kobo_xlsx()))
    job = the_job()
    suggested = web_import.suggested_mapping(job)["cases"]
    assert suggested["case/Номер справи"] == "source_ref"
    assert suggested["case/Дата повідомлення"] == "reported_on"
    assert suggested["child/Ім'я"] == "given_name" and suggested["child/Місце народження"] == "birth_place"
    for meta in ("start", "end", "_id", "_uuid", "_submission_time", "_index"):
        assert suggested[meta] == ""
    page = client.get(f"/imports/{job.key}/columns/")
    assert "case/Дата повідомлення" in page.text

    submit_suggested(client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.state == ImportJob.State.READY, job.problems
    assert (job.case_count, job.event_count, job.detail_count) == (3, 0, 3)
    assert Case.objects.count() == 0, "nothing is written before the import is confirmed"
    page = client.get(f"/imports/{job.key}/")
    assert "Import these cases" in page.text

    confirm(client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE
    assert Case.objects.filter(organisation=ngo_a).count() == 3
    assert job.percent == 100
    page = client.get(f"/imports/{job.key}/")
    assert "<progress" in page.text and "3 cases imported" in page.text

    # The organisation's follow-up rules apply to the imported cases.
    assert Task.objects.filter(kind=TaskKind.VERIFY_REPORT, case__organisation=ngo_a).count() == 3

    # The references, for the importer only; the upload itself is gone.
    remaining = sorted(path.name for path in (private_dir / str(job.key)).iterdir())
    assert remaining == ["references.csv"]
    response = client.get(f"/imports/{job.key}/references.csv")
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "source_ref,reference"
    refs = dict(line.split(",") for line in lines[1:])
    assert set(refs) == {"KOBO-1", "KOBO-2", "KOBO-3"}
    assert set(refs.values()) == set(Case.objects.values_list("reference", flat=True))
    other = UserFactory(organisation=ngo_a, role=Role.SUPERVISOR, username="another-supervisor")
    client.force_login(other)
    assert client.get(f"/imports/{job.key}/references.csv").status_code == 404
    actions = list(AccessLog.objects.filter(organisation=ngo_a).values_list("action", "user__username"))
    assert (AccessLog.Action.IMPORT, supervisor.username) in actions
    assert (AccessLog.Action.IMPORT_REFERENCES, supervisor.username) in actions

    # Later, the sweep deletes the references file.
    web_import.sweep(now=job.references_until + dt.timedelta(minutes=1))
    assert not (private_dir / str(job.key)).exists()
    client.force_login(supervisor)
    assert client.get(f"/imports/{job.key}/references.csv").status_code == 404


def test_a_status_changes_file_in_csv_with_semicolons_and_windows_1251(
    client, supervisor, django_capture_on_commit_callbacks
):
    client.force_login(supervisor)
    cases = csv_bytes(
        [
            ["Номер справи", "Стать", "Область", "Дата повідомлення", "Коментар оператора"],
            ["W-1", "F", "UA-14", RECENT, "дзвонили двічі"],
        ],
        delimiter=";",
        encoding="cp1251",
    )
    events = b"\xef\xbb\xbf" + csv_bytes([["Номер справи", "Статус", "Дата зміни"], ["W-1", "verified", RECENT]])
    upload(client, ("cases.csv", cases), ("changes.csv", events))
    job = the_job()
    assert job.cases_headers[0] == "Номер справи" and job.events_headers[0] == "Номер справи"
    mapping = web_import.suggested_mapping(job)
    assert mapping["cases"]["Коментар оператора"] == ""
    assert mapping["events"] == {"Номер справи": "source_ref", "Статус": "status", "Дата зміни": "occurred_on"}
    submit_suggested(client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.state == ImportJob.State.READY, job.problems
    confirm(client, job, django_capture_on_commit_callbacks)
    assert Case.objects.get().status == "verified"
    assert StatusChange.objects.get().recorded_via == "import"


def test_line_numbers_are_the_files_own_when_a_value_spans_lines(
    client, supervisor, django_capture_on_commit_callbacks
):
    client.force_login(supervisor)
    text = (
        "source_ref,sex,oblast,reported_on,notes\n"
        "M-1,F,UA-14," + RECENT + ',"two\nlines"\n'
        "\n"
        "M-2,X,UA-14," + RECENT + ",\n"
    )
    upload(client, ("multi.csv", text.encode()))
    job = the_job()
    submit_suggested(client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.problems.startswith("multi.csv:5: sex: "), job.problems


def test_the_mapping_is_checked_and_remembered_for_the_next_file(
    client, supervisor, ngo_a, django_capture_on_commit_callbacks
):
    client.force_login(supervisor)
    rows = [["Код", "Ґендер", "Обл.", "Коли"], ["R-1", "F", "UA-14", RECENT]]
    upload(client, ("first.csv", csv_bytes(rows)))
    job = the_job()
    assert web_import.suggested_mapping(job)["cases"] == {"Код": "", "Ґендер": "", "Обл.": "", "Коли": ""}
    # Two headers for one column, and required columns left out: refused, with the reasons.
    response = submit_suggested(client, job, django_capture_on_commit_callbacks, **{"cases-0": "sex", "cases-1": "sex"})
    assert response.status_code == 400
    assert "both matched to sex" in response.text and "source_ref: it is required" in response.text
    chosen = {"cases-0": "source_ref", "cases-1": "sex", "cases-2": "oblast", "cases-3": "reported_on"}
    submit_suggested(client, job, django_capture_on_commit_callbacks, **chosen)
    job.refresh_from_db()
    assert job.state == ImportJob.State.READY
    assert not ImportMapping.objects.exists(), "remembered when the import is confirmed"
    confirm(client, job, django_capture_on_commit_callbacks)
    assert ImportMapping.objects.filter(organisation=ngo_a).count() == 4

    upload(client, ("second.csv", csv_bytes([["код ", "ҐЕНДЕР", "Обл.", "Коли"], ["R-2", "M", "UA-14", RECENT]])))
    second = the_job()
    assert web_import.suggested_mapping(second)["cases"] == {
        "код": "source_ref",
        "ҐЕНДЕР": "sex",
        "Обл.": "oblast",
        "Коли": "reported_on",
    }
    page = client.get(f"/imports/{second.key}/columns/").text
    assert '<option value="sex" selected>' in page


# --- identifying details: never stored, logged or shown ---------------------------------------------------


def test_identifying_details_never_appear_in_a_page_a_log_or_a_table(
    client, supervisor, django_capture_on_commit_callbacks, caplog, private_dir
):
    caplog.set_level("DEBUG")
    client.force_login(supervisor)
    seen = [upload(client, ("kobo.xlsx", kobo_xlsx()))]
    job = the_job()
    seen.append(client.get(f"/imports/{job.key}/columns/"))
    seen.append(submit_suggested(client, job, django_capture_on_commit_callbacks))
    seen.append(client.get(f"/imports/{job.key}/"))
    seen.append(client.get(f"/imports/{job.key}/progress/"))
    seen.append(confirm(client, job, django_capture_on_commit_callbacks))
    seen.append(client.get(f"/imports/{job.key}/"))
    seen.append(client.get("/imports/"))
    seen.append(client.get("/cases/"))
    case = Case.objects.first()
    assert case is not None
    seen.append(client.get(f"/cases/{case.reference}/"))
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    secrets = (GIVEN, FAMILY, PATRONYMIC, PLACE, "2012-03-04")
    for secret in secrets:
        for response in seen:
            body = response.content.decode() if not response.streaming else ""
            assert secret not in body
        assert secret not in dump.getvalue()
        assert secret not in caplog.text
    # And nothing but the references file is left on disk.
    assert [path.name for path in (private_dir / str(job.key)).iterdir()] == ["references.csv"]


# --- progress, limits, files ----------------------------------------------------------------------------


def test_the_progress_endpoint(client, supervisor, django_capture_on_commit_callbacks):
    client.force_login(supervisor)
    upload(client, ("kobo.xlsx", kobo_xlsx()))
    job = the_job()
    ImportJob.objects.filter(pk=job.pk).update(state=ImportJob.State.RUNNING, done=3, total=12)
    answer = json.loads(client.get(f"/imports/{job.key}/progress/").content)
    assert answer["state"] == "running" and answer["percent"] == 25 and answer["working"] is True
    page = client.get(f"/imports/{job.key}/")
    assert '<progress id="import-progress" max="100" value="25">' in page.text
    assert f'data-progress-url="/imports/{job.key}/progress/"' in page.text
    assert "js/import.js" in page.text and 'http-equiv="refresh"' not in page.text


@pytest.mark.django_db(transaction=True)
def test_the_progress_hook_reports_both_phases_on_one_bar(supervisor, ngo_a):
    job = ImportJob.objects.create(organisation=ngo_a, created_by=supervisor, cases_name="x.csv", cases_format="csv")
    progress = web_import.JobProgress(job.pk, phases=2)
    progress.start(total=10, desc="Checking")
    progress.update(10)
    # The writing runs in the import's transaction (on PostgreSQL the progress goes through its own connection,
    # so that the page sees it before the commit).
    with transaction.atomic():
        progress.start(total=10, desc="Writing")
        progress.update(5)
        progress.close()
    job.refresh_from_db()
    assert (job.done, job.total, job.percent) == (15, 20, 75)


def test_a_file_over_the_limit_is_refused(client, supervisor, settings, private_dir):
    settings.IMPORT_MAX_UPLOAD_BYTES = 1024 * 1024
    client.force_login(supervisor)
    big = b"source_ref,sex,oblast,reported_on\n" + b"x" * (1024 * 1024)
    response = upload(client, ("big.csv", big))
    assert response.status_code == 400
    assert "big.csv is larger than 1 MB" in response.text
    assert not ImportJob.objects.exists()
    assert not private_dir.exists() or not any(private_dir.iterdir())


def test_a_file_that_is_no_spreadsheet_is_refused(client, supervisor, private_dir):
    client.force_login(supervisor)
    response = upload(client, ("photo.jpg", b"\xff\xd8\xff\xe0 not a spreadsheet"))
    assert response.status_code == 400
    assert "only CSV (.csv) and Excel workbooks (.xlsx)" in response.text
    assert not any(private_dir.iterdir())


def test_the_files_are_deleted_when_cancelled_and_when_abandoned(
    client, supervisor, private_dir, django_capture_on_commit_callbacks
):
    client.force_login(supervisor)
    upload(client, ("kobo.xlsx", kobo_xlsx()))
    job = the_job()
    assert (private_dir / str(job.key) / "upload-cases").exists()
    client.post(f"/imports/{job.key}/cancel/")
    job.refresh_from_db()
    assert job.state == ImportJob.State.CANCELLED and not (private_dir / str(job.key)).exists()

    upload(client, ("kobo.xlsx", kobo_xlsx()))
    abandoned = the_job()
    submit_suggested(client, abandoned, django_capture_on_commit_callbacks)
    assert (private_dir / str(abandoned.key) / "cases.csv").exists()
    result = web_import.sweep(now=abandoned.updated_at + dt.timedelta(hours=7))
    abandoned.refresh_from_db()
    assert result["expired"] == 1 and abandoned.state == ImportJob.State.EXPIRED
    assert not (private_dir / str(abandoned.key)).exists()


def test_a_failed_import_deletes_its_files_and_writes_nothing(
    client, supervisor, ngo_a, private_dir, django_capture_on_commit_callbacks
):
    client.force_login(supervisor)
    upload(client, ("kobo.xlsx", kobo_xlsx()))
    job = the_job()
    submit_suggested(client, job, django_capture_on_commit_callbacks)
    # Meanwhile the same file was imported by the command line: the re-check at write time refuses it.
    call_command(
        "import_cases",
        str(private_dir / str(job.key) / "cases.csv"),
        organisation=ngo_a.slug,
        no_progress=True,
        stdout=io.StringIO(),
    )
    before = Case.objects.count()
    confirm(client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.state == ImportJob.State.FAILED
    assert "kobo.xlsx:2: case/Номер справи (source_ref): " in job.problems
    assert Case.objects.count() == before
    assert not (private_dir / str(job.key)).exists()
    assert "Nothing was written" in client.get(f"/imports/{job.key}/").text


def test_the_upload_page_costs_the_same_queries_with_more_imports(client, supervisor, ngo_a):
    client.force_login(supervisor)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/imports/").status_code == 200
        return len(queries)

    ImportJob.objects.create(organisation=ngo_a, created_by=supervisor, cases_name="a.csv", cases_format="csv")
    one = count()
    for n in range(6):
        ImportJob.objects.create(organisation=ngo_a, created_by=supervisor, cases_name=f"{n}.csv", cases_format="csv")
    assert count() == one


def test_the_sweep_is_a_scheduled_task(settings):
    assert "casework.tasks.sweep_imports" in {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert Path(settings.IMPORT_PRIVATE_DIR).name == "imports"


def _rewritten(data: bytes, part: str, change) -> bytes:
    """The workbook with one of its parts changed by ``change`` (bytes -> bytes)."""
    import zipfile

    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info.filename)
            target.writestr(info.filename, change(body) if info.filename == part else body)
    return out.getvalue()


def test_a_damaged_workbook_is_a_problem_never_a_stuck_check(
    client, supervisor, django_capture_on_commit_callbacks, private_dir
):
    client.force_login(supervisor)
    # The sheet's XML cut off after its first rows: openpyxl opens the workbook, then fails on a later row.
    cut = _rewritten(kobo_xlsx(), "xl/worksheets/sheet1.xml", lambda body: body[: body.index(b'<row r="3"') + 20])
    upload(client, ("cut.xlsx", cut))
    job = the_job()
    submit_suggested(client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.state == ImportJob.State.INVALID
    assert "cut.xlsx:3: The workbook is damaged from this row on" in job.problems
    assert not Case.objects.filter(organisation=supervisor.organisation).exists()


def test_a_workbook_that_unpacks_to_far_more_than_its_size_is_refused(client, supervisor, private_dir):
    client.force_login(supervisor)
    # A part of 5 MB of one repeated byte: it packs into a few kB (a "zip bomb" in small).
    bomb = _rewritten(kobo_xlsx(), "docProps/app.xml", lambda body: body + b" " * 5_000_000)
    assert len(bomb) < 100_000
    response = upload(client, ("bomb.xlsx", bomb))
    assert response.status_code == 400
    assert "unpacks to far more than its size" in response.text
    assert not ImportJob.objects.exists()


def test_a_sheet_that_claims_to_be_huge_is_read_as_the_rows_it_holds(
    client, supervisor, django_capture_on_commit_callbacks, private_dir
):
    client.force_login(supervisor)
    claimed = _rewritten(
        kobo_xlsx(),
        "xl/worksheets/sheet1.xml",
        lambda body: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', body),
    )
    upload(client, ("claimed.xlsx", claimed))
    job = the_job()
    submit_suggested(client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.state == ImportJob.State.READY, job.problems
    assert job.case_count == 3


def test_an_import_delivered_twice_stays_done_with_its_references(
    client, supervisor, ngo_a, private_dir, django_capture_on_commit_callbacks, monkeypatch
):
    from casework.importing import ImportErrors, ImportProblem

    client.force_login(supervisor)
    upload(client, ("kobo.xlsx", kobo_xlsx()))
    job = the_job()
    submit_suggested(client, job, django_capture_on_commit_callbacks)
    confirm(client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE
    cases = Case.objects.count()
    references = web_import.references_path(job).read_text()

    # A second delivery read the job as running just before the first committed; by the time it plans, the
    # cases are in the register, so its plan is refused.
    ImportJob.objects.filter(pk=job.pk).update(state=ImportJob.State.RUNNING)

    def refused_meanwhile(**kwargs):
        ImportJob.objects.filter(pk=job.pk).update(state=ImportJob.State.DONE)  # the first delivery's commit
        raise ImportErrors([ImportProblem("cases.csv", 2, "source_ref", "imported already")])

    @contextlib.contextmanager
    def files_still_there(_job):
        yield None, None

    monkeypatch.setattr(web_import, "_files", files_still_there)
    monkeypatch.setattr(web_import, "plan_import", refused_meanwhile)
    web_import.run(job.pk)
    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE and job.problem_count == 0
    assert Case.objects.count() == cases
    assert web_import.references_path(job).read_text() == references
