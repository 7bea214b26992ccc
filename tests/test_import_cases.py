"""``manage.py import_cases``: CSV files in, cases and their history out, all or nothing.

Every file here is synthetic; the source_refs are invented.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import Organisation
from casework.importing import ImportErrors, apply_import, plan_import
from casework.models import Case, Institution, Status, StatusChange
from casework.screening import linkage_digest
from tests.factories import InstitutionFactory

CASE_HEADER = [
    "source_ref",
    "sex",
    "birth_year",
    "oblast",
    "reported_on",
    "displaced_on",
    "placement",
    "institution",
    "source",
]
EVENT_HEADER = ["source_ref", "status", "occurred_on", "via", "duplicate_of", "note"]


def case_row(**values: str) -> dict[str, str]:
    row = {
        "source_ref": "REF-A",
        "sex": "F",
        "birth_year": "2012",
        "oblast": "UA-14",
        "reported_on": "2023-01-10",
        "displaced_on": "",
        "placement": "",
        "institution": "",
        "source": "",
    }
    row.update(values)
    return row


def event_row(**values: str) -> dict[str, str]:
    row = {"source_ref": "REF-A", "status": "verified", "occurred_on": "2023-02-01", "via": "", "duplicate_of": ""}
    row["note"] = ""
    row.update(values)
    return row


def write_csv(path: Path, header: list[str], rows: list[dict[str, str]] | list[list[str]]) -> Path:
    def quote(value: str) -> str:
        return f'"{value.replace(chr(34), chr(34) * 2)}"' if any(c in value for c in ',"\n') else value

    lines = [",".join(header)]
    for row in rows:
        cells = [row.get(name, "") for name in header] if isinstance(row, dict) else row
        lines.append(",".join(quote(cell) for cell in cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def command_args(
    tmp_path: Path,
    cases: list[dict[str, str]] | None,
    events: list[dict[str, str]] | None,
    *,
    organisation: str,
    cases_path: Path | None,
    events_path: Path | None,
) -> list[str]:
    if cases_path is None:
        cases_path = write_csv(tmp_path / "cases.csv", CASE_HEADER, cases if cases is not None else [case_row()])
    if events is not None and events_path is None:
        events_path = write_csv(tmp_path / "events.csv", EVENT_HEADER, events)
    args = [str(cases_path), "--organisation", organisation, "--no-progress"]
    if events_path is not None:
        args += ["--events", str(events_path)]
    return args


def run(
    tmp_path: Path,
    cases: list[dict[str, str]] | None = None,
    events: list[dict[str, str]] | None = None,
    *,
    organisation: str = "ngo-a",
    cases_path: Path | None = None,
    events_path: Path | None = None,
) -> str:
    """Run the command; return what it printed."""
    args = command_args(
        tmp_path, cases, events, organisation=organisation, cases_path=cases_path, events_path=events_path
    )
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("import_cases", *args, stdout=stdout, stderr=stderr)
    assert stderr.getvalue() == ""
    return stdout.getvalue()


def refused(
    tmp_path: Path,
    cases: list[dict[str, str]] | None = None,
    events: list[dict[str, str]] | None = None,
    *,
    organisation: str = "ngo-a",
    cases_path: Path | None = None,
    events_path: Path | None = None,
) -> list[str]:
    """Run the command, expect it to refuse and write nothing; return the problems listed and the error."""
    args = command_args(
        tmp_path, cases, events, organisation=organisation, cases_path=cases_path, events_path=events_path
    )
    before = (Case.objects.count(), StatusChange.objects.count())
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("import_cases", *args, stdout=stdout, stderr=stderr)
    assert (Case.objects.count(), StatusChange.objects.count()) == before
    assert stdout.getvalue() == ""
    return [*stderr.getvalue().splitlines(), str(raised.value)]


def assert_problem(problems: list[str], where: str, fragment: str) -> None:
    """One listed problem starts with ``where`` (file:line: column:) and says ``fragment``."""
    matching = [problem for problem in problems if problem.startswith(where)]
    assert matching, f"no problem at {where!r} in {problems}"
    assert any(fragment in problem for problem in matching), f"{fragment!r} not in {matching}"


def tomorrow() -> str:
    return (timezone.localdate() + dt.timedelta(days=1)).isoformat()


# --- a good import ---------------------------------------------------------------


def test_it_imports_cases_and_their_history(tmp_path: Path, ngo_a: Organisation, qatar: Organisation) -> None:
    InstitutionFactory(code="crimea-01")
    institution = Institution.objects.get(code="crimea-01")
    cases = [
        case_row(source_ref="NGOA-7731", displaced_on="2022-06", placement="institution", institution="crimea-01"),
        case_row(source_ref="NGOA-7732", sex="M", birth_year="", displaced_on="2022-09-15", source="family"),
        case_row(source_ref="NGOA-7733", sex="U", oblast="UA-65", reported_on="2023-03-01"),
        case_row(source_ref="NGOA-7734", reported_on="2023-04-01"),
        case_row(source_ref="NGOA-7735", reported_on="2023-04-01"),
    ]
    events = [
        event_row(source_ref="NGOA-7731", status="verified", occurred_on="2023-02-01"),
        event_row(source_ref="NGOA-7732", status="verified", occurred_on="2023-02-01"),
        event_row(source_ref="NGOA-7731", status="return_requested", occurred_on="2023-05-01", via="qatar"),
        event_row(source_ref="NGOA-7732", status="duplicate", occurred_on="2023-05-02", duplicate_of="NGOA-7731"),
        event_row(source_ref="NGOA-7731", status="repatriated", occurred_on="2023-07-20", via="qatar"),
        event_row(source_ref="NGOA-7733", status="verified", occurred_on="2023-03-05"),
        event_row(source_ref="NGOA-7733", status="reported", occurred_on="2023-03-06", note="Verified by mistake."),
        event_row(source_ref="NGOA-7734", status="withdrawn", occurred_on="2023-04-02", note="Report was mistaken."),
    ]
    before = timezone.now()

    output = run(tmp_path, cases, events)

    assert output == "Imported 5 cases and 8 status changes for ngo-a.\n"
    by_ref = {ref: Case.objects.get(source_ref_hash=linkage_digest(ref, kind="source_ref")) for ref in
              ("NGOA-7731", "NGOA-7732", "NGOA-7733", "NGOA-7734", "NGOA-7735")}  # fmt: skip
    a, b, c, d, e = by_ref.values()
    assert {case.organisation_id for case in by_ref.values()} == {ngo_a.pk}
    assert len({case.reference for case in by_ref.values()}) == 5
    assert (a.status, a.version, a.institution, a.placement) == (Status.REPATRIATED, 4, institution, "institution")
    assert (a.displaced_on, a.displaced_precision) == (dt.date(2022, 6, 1), "month")
    assert (b.status, b.version, b.birth_year, b.sex, b.source) == (Status.DUPLICATE, 3, None, "M", "family")
    assert (b.displaced_on, b.displaced_precision) == (dt.date(2022, 9, 15), "day")
    assert (c.status, c.version, c.oblast) == (Status.REPORTED, 3, "UA-65")
    assert (d.status, d.version) == (Status.WITHDRAWN, 2)
    assert (e.status, e.version, e.last_change_at) == (Status.REPORTED, 1, None)
    assert all(case.last_change_at is not None and case.last_change_at >= before for case in (a, b, c, d))

    history = list(StatusChange.objects.filter(case=a).order_by("id"))
    assert [(ch.from_status, ch.to_status, ch.occurred_on, ch.version) for ch in history] == [
        ("reported", "verified", dt.date(2023, 2, 1), 2),
        ("verified", "return_requested", dt.date(2023, 5, 1), 3),
        ("return_requested", "repatriated", dt.date(2023, 7, 20), 4),
    ]
    assert [ch.via for ch in history] == [None, qatar, qatar]
    assert all(
        (ch.recorded_by, ch.recorded_via, ch.is_correction, ch.recorded_at) == (None, "import", False, a.last_change_at)
        for ch in history
    )
    duplicate = StatusChange.objects.get(case=b, to_status=Status.DUPLICATE)
    assert (duplicate.duplicate_of, duplicate.version) == (a, 3)
    correction = StatusChange.objects.get(case=c, to_status=Status.REPORTED)
    assert (correction.is_correction, correction.note) == (True, "Verified by mistake.")
    assert StatusChange.objects.get(case=d).note == "Report was mistaken."
    # History ids follow the file's order.
    assert list(StatusChange.objects.order_by("id").values_list("occurred_on", flat=True))[:2] == [
        dt.date(2023, 2, 1),
        dt.date(2023, 2, 1),
    ]


def test_it_never_stores_the_plain_source_ref(tmp_path: Path, ngo_a: Organisation) -> None:
    run(tmp_path, [case_row(source_ref="SECRET-REF-90817")], [event_row(source_ref="SECRET-REF-90817")])

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert "SECRET-REF-90817" not in dump.getvalue()
    assert "secret-ref-90817" not in dump.getvalue().lower()
    case = Case.objects.get()
    assert case.source_ref_hash == linkage_digest("SECRET-REF-90817", kind="source_ref")


def test_it_lets_two_organisations_import_the_same_source_ref(
    tmp_path: Path, ngo_a: Organisation, ngo_b: Organisation
) -> None:
    run(tmp_path, [case_row(source_ref="SHARED-1")])
    output = run(tmp_path, [case_row(source_ref="SHARED-1")], organisation="ngo-b")

    assert output == "Imported 1 case and 0 status changes for ngo-b.\n"
    assert sorted(Case.objects.values_list("organisation__slug", flat=True)) == ["ngo-a", "ngo-b"]
    assert len(set(Case.objects.values_list("source_ref_hash", flat=True))) == 1


def test_it_marks_a_duplicate_of_a_case_imported_earlier(tmp_path: Path, ngo_a: Organisation) -> None:
    run(tmp_path, [case_row(source_ref="EARLY-1")])
    first = Case.objects.get()
    (tmp_path / "second").mkdir()

    run(
        tmp_path / "second",
        [case_row(source_ref="LATE-1")],
        [event_row(source_ref="LATE-1", status="duplicate", duplicate_of="EARLY-1")],
    )

    change = StatusChange.objects.get()
    assert (change.case.status, change.duplicate_of) == (Status.DUPLICATE, first)


def test_it_reads_a_spreadsheet_export(tmp_path: Path, ngo_a: Organisation) -> None:
    # Byte order mark, CRLF line ends, a blank line, columns in another order, optional columns left out.
    path = tmp_path / "cases.csv"
    path.write_bytes(
        "\ufeffreported_on,Source_Ref,sex,oblast\r\n2023-01-10,X-1,F,UA-14\r\n\r\n2023-01-11,X-2,M,UA-43\r\n".encode()
    )

    assert run(tmp_path, cases_path=path) == "Imported 2 cases and 0 status changes for ngo-a.\n"
    assert sorted(Case.objects.values_list("oblast", "birth_year", "placement")) == [
        ("UA-14", None, ""),
        ("UA-43", None, ""),
    ]


def test_it_writes_nothing_on_a_dry_run(tmp_path: Path, ngo_a: Organisation) -> None:
    path = write_csv(tmp_path / "cases.csv", CASE_HEADER, [case_row()])
    stdout = io.StringIO()

    call_command("import_cases", str(path), "--organisation", "ngo-a", "--dry-run", stdout=stdout)

    assert "1 case and 0 status changes for ngo-a" in stdout.getvalue()
    assert not Case.objects.exists()


# --- refused files -------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "column", "fragment"),
    [
        ({"sex": "X"}, "sex", "F, M or U"),
        ({"sex": ""}, "sex", "F, M or U"),
        ({"birth_year": "twelve"}, "birth_year", "as a number"),
        ({"birth_year": "2024", "reported_on": "2023-05-01"}, "birth_year", "year of the report (2023)"),
        ({"birth_year": "1985"}, "birth_year", "between 1990"),
        ({"oblast": "UA-99"}, "oblast", "ISO 3166-2:UA"),
        ({"reported_on": "10/01/2023"}, "reported_on", "YYYY-MM-DD"),
        ({"reported_on": "2023-02-30"}, "reported_on", "not a real date"),
        ({"reported_on": ""}, "reported_on", "Give the date"),
        ({"displaced_on": "June 2022"}, "displaced_on", "YYYY-MM"),
        ({"displaced_on": "2022-13"}, "displaced_on", "not a real month"),
        ({"displaced_on": "2023-06", "reported_on": "2023-05-01"}, "displaced_on", "after the report date"),
        ({"displaced_on": "2023-01-11"}, "displaced_on", "after the report date"),
        ({"placement": "cellar"}, "placement", "Use one of: camp,"),
        ({"institution": "nowhere-7"}, "institution", "No institution has the code “nowhere-7”"),
        ({"source": "rumour"}, "source", "Use one of: family,"),
        ({"source_ref": ""}, "source_ref", "Give the case's reference"),
    ],
)
def test_it_refuses_a_bad_case_value(
    tmp_path: Path, ngo_a: Organisation, values: dict[str, str], column: str, fragment: str
) -> None:
    problems = refused(tmp_path, [case_row(source_ref="OK-1"), case_row(**{"source_ref": "BAD-1", **values})])

    assert_problem(problems, f"cases.csv:3: {column}: ", fragment)
    assert problems[-1] == "Nothing was imported: 1 problem."


def test_it_refuses_a_report_date_in_the_future(tmp_path: Path, ngo_a: Organisation) -> None:
    problems = refused(tmp_path, [case_row(reported_on=tomorrow())])

    assert_problem(problems, "cases.csv:2: reported_on: ", "in the future")


def test_it_refuses_a_source_ref_twice_in_the_file(tmp_path: Path, ngo_a: Organisation) -> None:
    problems = refused(tmp_path, [case_row(source_ref="R-1"), case_row(source_ref="R-2"), case_row(source_ref="r-1 ")])

    assert_problem(problems, "cases.csv:4: source_ref: ", "same source_ref as line 2")


def test_it_refuses_a_source_ref_the_organisation_imported_before(tmp_path: Path, ngo_a: Organisation) -> None:
    run(tmp_path, [case_row(source_ref="R-1")])
    reference = Case.objects.get().reference

    problems = refused(tmp_path, [case_row(source_ref="R-2"), case_row(source_ref="R-1")])

    assert_problem(problems, "cases.csv:3: source_ref: ", f"ngo-a imported this source_ref before (case {reference})")


def test_it_refuses_an_unknown_column(tmp_path: Path, ngo_a: Organisation) -> None:
    path = write_csv(tmp_path / "cases.csv", [*CASE_HEADER, "child_name"], [[*case_row().values(), "x"]])

    problems = refused(tmp_path, cases_path=path)

    assert_problem(problems, "cases.csv:1: child_name: ", "Unknown column")


def test_it_refuses_a_missing_column(tmp_path: Path, ngo_a: Organisation) -> None:
    header = [name for name in CASE_HEADER if name != "oblast"]
    path = write_csv(tmp_path / "cases.csv", header, [case_row()])

    problems = refused(tmp_path, cases_path=path)

    assert_problem(problems, "cases.csv:1: oblast: ", "Missing column")


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        (b"", "cases.csv: ", "The file is empty"),
        (b"REF-A,F,2012,UA-14,2023-01-10,,,,\n", "cases.csv:1: ", "must name the columns"),
        (",".join(CASE_HEADER).encode() + b"\n", "cases.csv: ", "no cases"),
        (
            ",".join(CASE_HEADER).encode() + b"\nREF-A,F,2012,UA-14,2023-01-10,,,,\nR\xe9F-B,F,,UA-14,2023-01-10,,,,\n",
            "cases.csv:3: ",
            "not UTF-8",
        ),
        (",".join(CASE_HEADER).encode() + b"\nREF-A,F,2012\n", "cases.csv:2: ", "has 3 fields; the header has 9"),
        (",".join(CASE_HEADER).encode() + b'\nREF-A,F,2012,"UA-14,2023-01-10,,,,\n', "cases.csv:2: ", "Malformed"),
    ],
)
def test_it_refuses_an_unreadable_file(
    tmp_path: Path, ngo_a: Organisation, content: bytes, line: str, fragment: str
) -> None:
    path = tmp_path / "cases.csv"
    path.write_bytes(content)

    problems = refused(tmp_path, cases_path=path)

    assert_problem(problems, line, fragment)


def test_it_refuses_a_missing_file(tmp_path: Path, ngo_a: Organisation) -> None:
    problems = refused(tmp_path, cases_path=tmp_path / "nowhere.csv")

    assert_problem(problems, "nowhere.csv: ", "Cannot read the file")


def test_it_refuses_an_unknown_organisation(tmp_path: Path, ngo_a: Organisation) -> None:
    problems = refused(tmp_path, [case_row()], organisation="ngo-zz")

    assert problems == ["No organisation has the slug “ngo-zz”: nothing was imported."]


@pytest.mark.parametrize(
    ("events", "where", "fragment"),
    [
        ([event_row(status="found")], "events.csv:2: status: ", "“found” is not a status"),
        ([event_row(status="reported")], "events.csv:2: status: ", "already “Reported”"),
        (
            [event_row(source_ref="NOT-THERE")],
            "events.csv:2: source_ref: ",
            "No case with this source_ref in cases.csv",
        ),
        ([event_row(source_ref="")], "events.csv:2: source_ref: ", "Give the source_ref"),
        ([event_row(occurred_on="01.02.2023")], "events.csv:2: occurred_on: ", "YYYY-MM-DD"),
        ([event_row(occurred_on="")], "events.csv:2: occurred_on: ", "Give the date"),
        ([event_row(occurred_on="2023-01-09")], "events.csv:2: occurred_on: ", "before the case was reported"),
        ([event_row(occurred_on=tomorrow())], "events.csv:2: occurred_on: ", "in the future"),
        (
            [event_row(occurred_on="2023-03-01"), event_row(status="located", occurred_on="2023-02-01")],
            "events.csv:3: occurred_on: ",
            "before the case's latest change (1 Mar 2023)",
        ),
        ([event_row(status="return_requested", via="ngo-b")], "events.csv:2: via: ", "not an intermediary"),
        ([event_row(status="return_requested", via="atlantis")], "events.csv:2: via: ", "No organisation has"),
        ([event_row(status="verified", via="qatar")], "events.csv:2: via: ", "may name an intermediary"),
        ([event_row(status="duplicate")], "events.csv:2: duplicate_of: ", "Name the surviving case"),
        (
            [event_row(status="duplicate", duplicate_of="NOT-THERE")],
            "events.csv:2: duplicate_of: ",
            "No case with this source_ref in cases.csv or imported earlier by ngo-a",
        ),
        ([event_row(status="duplicate", duplicate_of="REF-A")], "events.csv:2: duplicate_of: ", "of itself"),
        (
            [
                event_row(source_ref="REF-B", status="duplicate", duplicate_of="REF-C"),
                event_row(status="duplicate", duplicate_of="REF-B"),
            ],
            "events.csv:3: duplicate_of: ",
            "itself a duplicate",
        ),
        ([event_row(status="verified", duplicate_of="REF-B")], "events.csv:2: duplicate_of: ", "Only a move to"),
        (
            [event_row(status="located"), event_row(status="verified", occurred_on="2023-02-02")],
            "events.csv:3: note: ",
            "A correction needs a reason",
        ),
        ([event_row(status="withdrawn")], "events.csv:2: note: ", "Withdrawing a case needs a reason"),
        (
            [event_row(status="withdrawn", note="Mother called from +380 67 123 4567")],
            "events.csv:2: note: ",
            "a phone number",
        ),
    ],
)
def test_it_refuses_a_bad_event(
    tmp_path: Path,
    ngo_a: Organisation,
    ngo_b: Organisation,
    qatar: Organisation,
    events: list[dict[str, str]],
    where: str,
    fragment: str,
) -> None:
    cases = [case_row(source_ref="REF-A"), case_row(source_ref="REF-B"), case_row(source_ref="REF-C")]

    problems = refused(tmp_path, cases, events=events)

    assert_problem(problems, where, fragment)
    assert problems[-1] == "Nothing was imported: 1 problem."


def test_it_refuses_an_events_file_with_a_missing_column(tmp_path: Path, ngo_a: Organisation) -> None:
    path = write_csv(tmp_path / "events.csv", ["source_ref", "status", "when"], [["REF-A", "verified", "2023-02-01"]])

    problems = refused(tmp_path, [case_row(sex="W")], events_path=path)

    # The cases are still checked.
    assert [problem.split(": ")[0:2] for problem in problems[:-1]] == [
        ["cases.csv:2", "sex"],
        ["events.csv:1", "when"],
        ["events.csv:1", "occurred_on"],
    ]
    assert_problem(problems, "events.csv:1: when: ", "Unknown column")
    assert_problem(problems, "events.csv:1: occurred_on: ", "Missing column")


def test_it_lists_every_problem_in_order(tmp_path: Path, ngo_a: Organisation) -> None:
    cases = [
        case_row(source_ref="R-1"),
        case_row(source_ref="R-2", sex="female"),
        case_row(source_ref="R-3"),
        case_row(source_ref="R-4", oblast="Donetsk", birth_year="20x2"),
    ]
    events = [
        event_row(source_ref="R-1"),
        # A note over two lines: the next row's line number must still be right.
        event_row(source_ref="R-3", status="withdrawn", note="Report withdrawn\nby the family."),
        event_row(source_ref="R-1", status="repatriated", via="nowhere"),
        event_row(source_ref="R-9"),
    ]

    problems = refused(tmp_path, cases, events=events)

    assert [problem.split(": ")[0:2] for problem in problems[:-1]] == [
        ["cases.csv:3", "sex"],
        ["cases.csv:5", "birth_year"],
        ["cases.csv:5", "oblast"],
        ["events.csv:5", "via"],
        ["events.csv:6", "source_ref"],
    ]
    assert problems[-1] == "Nothing was imported: 5 problems."


def test_it_gives_other_doors_the_problems_as_data(tmp_path: Path, ngo_a: Organisation) -> None:
    path = write_csv(tmp_path / "cases.csv", CASE_HEADER, [case_row(sex="X")])

    with pytest.raises(ImportErrors) as raised:
        plan_import(cases_file=path, organisation=ngo_a)

    [problem] = raised.value.errors
    assert (problem.file, problem.line, problem.column) == ("cases.csv", 2, "sex")
    assert str(problem).startswith("cases.csv:2: sex: ")


def test_it_reads_an_open_file(ngo_a: Organisation) -> None:
    upload = io.BytesIO(b"source_ref,sex,oblast,reported_on\nU-1,F,UA-14,2023-01-10\n")
    upload.name = "upload.csv"

    plan = plan_import(cases_file=upload, organisation=ngo_a)

    assert (plan.cases_file, len(plan.cases), plan.cases[0].oblast) == ("upload.csv", 1, "UA-14")


def test_it_refuses_a_plan_overtaken_by_another_import(tmp_path: Path, ngo_a: Organisation) -> None:
    path = write_csv(tmp_path / "cases.csv", CASE_HEADER, [case_row(source_ref="R-1"), case_row(source_ref="R-2")])
    first = plan_import(cases_file=path, organisation=ngo_a)
    apply_import(plan_import(cases_file=path, organisation=ngo_a))

    with pytest.raises(ImportErrors) as raised:
        apply_import(first)

    assert [str(problem).split(": ")[0:2] for problem in raised.value.errors] == [
        ["cases.csv:2", "source_ref"],
        ["cases.csv:3", "source_ref"],
    ]
    assert "meanwhile" in raised.value.errors[0].message
    assert Case.objects.count() == 2
