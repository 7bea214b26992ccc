"""A list exported for sending (XLSX, CSV) and uploaded back answered: every error first, then all or nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import load_workbook

from casework import services as case_services
from casework.models import AccessLog, Case, Status
from partners.models import AnswerSheetJob, ListAnswer
from tests.factories import CaseFactory
from tests.list_helpers import sent_list

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_in_process")]


@pytest.fixture
def world(ngo_a, qatar, supervisor):
    cases = sorted(
        (CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10), notes="internal") for _n in range(3)),
        key=lambda case: case.reference,
    )
    return {"cases": cases, "list": sent_list(ngo_a, qatar, cases, by=supervisor, sent_on=dt.date(2024, 3, 1))}


def exported_csv(client, world) -> list[list[str]]:
    response = client.get(f"/lists/{world['list'].pk}/export.csv")
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.fixture
def upload(client, django_capture_on_commit_callbacks):
    """Upload a sheet, its check run (eagerly) after the commit; the job's page, followed."""

    def run(client_, world, name: str, content: bytes):
        with django_capture_on_commit_callbacks(execute=True):
            response = client_.post(f"/lists/{world['list'].pk}/upload/", {"sheet": SimpleUploadedFile(name, content)})
        if response.status_code != 302:
            return response
        return client_.get(response["Location"])

    return run


@pytest.fixture
def confirm(django_capture_on_commit_callbacks):
    """Confirm a checked sheet, its recording run (eagerly) after the commit; the job's page, followed."""

    def run(client_, job):
        with django_capture_on_commit_callbacks(execute=True):
            response = client_.post(f"/lists/{job.case_list_id}/sheets/{job.key}/confirm/")
        assert response.status_code == 302
        return client_.get(response["Location"])

    return run


def as_csv(rows: list[list[str]]) -> bytes:
    output = io.StringIO()
    csv.writer(output).writerows(rows)
    return output.getvalue().encode()


def test_the_csv_round_trip_records_every_answer_after_a_preview(client, supervisor, world, upload, confirm):
    client.force_login(supervisor)
    rows = exported_csv(client, world)
    header = rows[0]
    assert header[0] == "reference" and header[-3:] == ["answer", "answered_on", "note"]
    assert "notes" not in header and all("internal" not in cell for row in rows for cell in row)
    assert [row[0] for row in rows[1:]] == [case.reference for case in world["cases"]]
    assert AccessLog.objects.filter(action=AccessLog.Action.EXPORT).count() == 3
    a, b, c = world["cases"]
    rows[1][-3:] = ["returned", "2024-06-01", "Handed over at the border"]
    rows[2][-3:] = ["located", "2024-05-01", ""]
    preview = upload(client, world, "answered.csv", as_csv(rows))
    job = preview.context["job"]
    assert job.state == AnswerSheetJob.State.READY, preview.context.get("problems")
    assert (job.answer_count, job.move_count) == (2, 2)
    assert job.kind_counts == {"returned": 1, "located": 1}
    assert not ListAnswer.objects.exists()  # the preview writes nothing
    assert Case.objects.get(pk=a.pk).status == Status.REPORTED
    done = confirm(client, job)
    assert done.context["job"].state == AnswerSheetJob.State.DONE
    assert (done.context["job"].recorded_count, done.context["job"].moved_count) == (2, 2)
    assert ListAnswer.objects.count() == 2
    assert AnswerSheetJob.objects.get(pk=job.pk).answers == []  # the answers kept are deleted once recorded
    # Confirmed twice, or the same sheet uploaded again: nothing is added.
    again = confirm(client, job)
    assert again.context["job"].state == AnswerSheetJob.State.DONE
    assert ListAnswer.objects.count() == 2
    second = upload(client, world, "answered.csv", as_csv(rows))
    assert (second.context["job"].answer_count, second.context["job"].known_count) == (0, 2)
    assert ListAnswer.objects.count() == 2
    assert Case.objects.get(pk=a.pk).status == Status.REPATRIATED
    assert Case.objects.get(pk=b.pk).status == Status.LOCATED
    assert Case.objects.get(pk=c.pk).status == Status.REPORTED
    # The next export carries the latest answers.
    again = exported_csv(client, world)
    assert again[1][header.index("latest_answer")] == "returned"


def test_the_xlsx_round_trip(client, supervisor, world, upload, confirm):
    client.force_login(supervisor)
    response = client.get(f"/lists/{world['list'].pk}/export.xlsx")
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(response.content))
    sheet = workbook.worksheets[0]
    header = [cell.value for cell in sheet[1]]
    sheet.cell(row=2, column=header.index("answer") + 1, value="not_found")
    sheet.cell(row=2, column=header.index("answered_on") + 1, value=dt.datetime(2024, 7, 1))
    output = io.BytesIO()
    workbook.save(output)
    preview = upload(client, world, "answered.xlsx", output.getvalue())
    assert preview.context["job"].state == AnswerSheetJob.State.READY, preview.context.get("problems")
    confirm(client, preview.context["job"])
    [made] = ListAnswer.objects.all()
    assert (made.item.case, made.answer, made.answered_on) == (world["cases"][0], "not_found", dt.date(2024, 7, 1))


def test_every_error_is_shown_as_file_line_column_reason_and_nothing_is_written(
    client, supervisor, world, ngo_a, upload
):
    client.force_login(supervisor)
    rows = exported_csv(client, world)
    stranger = CaseFactory(organisation=ngo_a)
    rows[1][-3:] = ["found him", "2024-06-01", ""]
    rows[2][-3:] = ["located", "2024-02-30", ""]
    rows[3][-3:] = ["returned", "2024-06-01", "call +380 67 123 4567"]
    rows.append([stranger.reference, *[""] * (len(rows[0]) - 4), "located", "2024-06-01", ""])
    rows.append([world["cases"][0].reference, *[""] * (len(rows[0]) - 4), "located", "2024-02-01", ""])
    response = upload(client, world, "answered.csv", as_csv(rows))
    assert response.context["job"].state == AnswerSheetJob.State.INVALID
    problems = list(response.context["problems"])
    assert problems[0].startswith("answered.csv:2: answer: ")
    assert problems[1].startswith("answered.csv:3: answered_on: ")
    assert problems[2].startswith("answered.csv:4: note: ")
    assert problems[3].startswith("answered.csv:5: reference: ")
    assert any(problem.startswith("answered.csv:6: reference: ") for problem in problems)  # answered twice
    assert any(problem.startswith("answered.csv:6: answered_on: ") for problem in problems)  # before sending
    assert not ListAnswer.objects.exists()


def test_a_move_the_status_service_refuses_rolls_back_the_whole_sheet(client, supervisor, world, upload):
    late = world["cases"][1]
    case_services.change_status(
        case=late,
        actor=case_services.Actor.for_user(supervisor),
        to_status=Status.VERIFIED,
        occurred_on=dt.date(2024, 8, 1),
        expected_version=late.version,
    )
    client.force_login(supervisor)
    rows = exported_csv(client, world)
    rows[1][-3:] = ["returned", "2024-06-01", ""]
    rows[2][-3:] = ["located", "2024-06-01", ""]  # before the case's latest change (2024-08-01)
    response = upload(client, world, "answered.csv", as_csv(rows))
    assert response.context["job"].state == AnswerSheetJob.State.INVALID
    [problem] = response.context["problems"]
    assert problem.startswith("answered.csv:3: answered_on: The date is before the case's latest change")
    assert not ListAnswer.objects.exists()
    assert Case.objects.get(pk=world["cases"][0].pk).status == Status.REPORTED


def zip_without_a_workbook() -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as archive:
        archive.writestr("hello.txt", "synthetic")
    return output.getvalue()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("answered.xlsx", b"not a workbook"),
        ("answered.xlsx", zip_without_a_workbook()),
        ("answered.csv", b"\xff\xfe\x00bad"),
        ("answered.csv", b""),
        ("answered.csv", b"reference,note\nC-AAAA-AAAA,x\n"),
        ("answered.csv", b'reference,answer,answered_on\n"unterminated\n'),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_with_a_reason(client, supervisor, world, name, content, upload):
    client.force_login(supervisor)
    response = upload(client, world, name, content)
    assert response.context["job"].state == AnswerSheetJob.State.INVALID
    assert response.context["problems"] and all(p.startswith(name) for p in response.context["problems"])
    assert not ListAnswer.objects.exists()


def test_a_post_without_a_sheet_is_refused(client, supervisor, world):
    client.force_login(supervisor)
    response = client.post(f"/lists/{world['list'].pk}/upload/", {"payload": "forged"})
    assert response.status_code == 400
    assert not AnswerSheetJob.objects.exists()
    assert not ListAnswer.objects.exists()


def test_only_the_sending_organisations_supervisors_export_and_its_answerers_upload(
    client, caseworker, analyst, caseworker_b, world
):
    client.force_login(caseworker)
    assert client.get(f"/lists/{world['list'].pk}/export.csv").status_code == 403
    assert client.get(f"/lists/{world['list'].pk}/upload/").status_code == 200
    client.force_login(analyst)
    assert client.get(f"/lists/{world['list'].pk}/upload/").status_code == 403
    client.force_login(caseworker_b)
    assert client.get(f"/lists/{world['list'].pk}/export.csv").status_code == 404
    assert client.post(f"/lists/{world['list'].pk}/upload/", {}).status_code == 404
    assert not AccessLog.objects.filter(action=AccessLog.Action.EXPORT).exists()
