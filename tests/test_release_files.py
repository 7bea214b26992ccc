"""A release's files (JSON, CSV, HXL, XLSX) and the command-line doors: release_figures, figures --release."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import hxl  # type: ignore[import-untyped]
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from openpyxl import load_workbook

from accounts.models import Role
from casework import services as case_services
from reports import exports, releases
from reports.models import Release, Snapshot
from tests.factories import CaseFactory, UserFactory

D = dt.date


@pytest.fixture
def register(ngo_a, qatar):
    supervisor = UserFactory(username="files-supervisor", organisation=ngo_a, role=Role.SUPERVISOR)
    for day in range(60):
        case = CaseFactory(
            organisation=ngo_a,
            reported_on=D(2024, 1, 1) + dt.timedelta(days=day),
            oblast="UA-14" if day % 4 else "UA-65",
        )
        if day % 3 == 0:
            case_services.change_status(
                case=case,
                actor=case_services.Actor.for_user(supervisor),
                to_status="repatriated",
                occurred_on=D(2024, 6, 1),
                expected_version=1,
                via=qatar,
            )


def run(command: str, *args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue()


def test_release_figures_makes_an_approved_release_and_prints_its_number_last(register):
    printed = run("release_figures", "--as-of", "2024-12-31", "--note", "Year-end figures for the coalition.")
    assert printed.splitlines()[-1] == "1"
    release = Release.objects.get()
    assert release.state == "approved" and release.note == "Year-end figures for the coalition."
    assert release.figures["totals"] == {"reported": 60, "repatriated": 20, "outstanding": 40}
    assert run("release_figures", "--as-of", "2024-12-31", "--unless-released").splitlines()[-1] == "1"
    assert run("release_figures", "--as-of", "2025-01-28").splitlines()[-1] == "2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "2099-01-01"], "future"),
        (["--as-of", "2024-12-31", "--note", "Born 12.03.2015 in Mariupol."], "personal data"),
        (["--as-of", "2021-01-01"], "Releases start in"),
    ],
)
def test_release_figures_refuses_bad_input_and_changes_nothing(register, args, message):
    with pytest.raises(CommandError, match=message):
        run("release_figures", *args)
    assert not Release.objects.exists() and not Snapshot.objects.exists()


def test_release_figures_refuses_what_is_not_a_date(register):
    for bad in ("yesterday", "2024-02-30", ""):
        with pytest.raises(CommandError):
            run("release_figures", "--as-of", bad)
    with pytest.raises(CommandError):
        run("release_figures")
    assert not Release.objects.exists()


def test_release_figures_keeps_the_spacing(register):
    run("release_figures", "--as-of", "2024-12-31")
    with pytest.raises(CommandError, match="at least 28 days apart"):
        run("release_figures", "--as-of", "2025-01-10")
    assert Release.objects.count() == 1


def test_figures_prints_a_release_as_json(register):
    run("release_figures", "--as-of", "2024-12-31")
    printed = json.loads(run("figures", "--release", "1"))
    assert printed == Release.objects.get().figures
    assert printed["release"] == 1 and printed["exact"] == ["totals", "records"]
    assert printed["method"]["name"] == "zcdp-discrete-gaussian" and printed["method"]["min_cell"] == 5


def test_figures_prints_a_release_as_csv_that_says_what_is_exact_and_what_is_protected(register):
    run("release_figures", "--as-of", "2024-12-31")
    release = Release.objects.get()
    rows = list(csv.DictReader(io.StringIO(run("figures", "--release", "1", "--format", "csv"))))
    method = {row["parameter"]: row["value"] for row in rows if row["breakdown"] == "method"}
    assert method["name"] == "zcdp-discrete-gaussian"
    assert float(method["rho"]) == pytest.approx(release.rho) and float(method["sigma"]) == pytest.approx(release.sigma)
    assert method["min_cell"] == "5" and method["rho_per_year"] == "10.0" and method["opendp"] == "0.16.0"
    total = next(row for row in rows if row["breakdown"] == "total")
    assert (total["reported"], total["repatriated"], total["outstanding"], total["protection"]) == (
        "60",
        "20",
        "40",
        "exact",
    )
    cells = [row for row in rows if row["breakdown"] not in ("method", "total")]
    assert cells and {row["protection"] for row in cells} == {"protected"}
    # A cell under k is empty and named, never a small number. Which oblasts fall under k is the noise's
    # choice (an oblast with no case may be published as 5): the 60 children fitted over 27 oblasts leave
    # at least 15 of them under k, and each is the one the release's JSON holds as None.
    by_oblast = release.figures["by_oblast"]
    hidden = sorted(code for code, cell in by_oblast.items() if cell["reported"] is None)
    assert len(hidden) >= len(by_oblast) - 60 // 5
    oblast_rows = {row["adm1_code"]: row for row in rows if row["breakdown"] == "oblast"}
    assert set(oblast_rows) == set(by_oblast)
    for code in hidden:
        assert oblast_rows[code]["reported"] == "" and oblast_rows[code]["repatriated"] == ""
        assert oblast_rows[code]["fewer_than_k"] == "reported repatriated"
    for row in cells:
        for measure in exports.RELEASE_MEASURES:
            if row[measure] != "" and measure != "median_days_to_return":
                assert int(row[measure]) >= 5
    assert all(row["release"] == "1" and row["date"] == "2024-12-31" for row in rows)


def test_figures_prints_a_release_as_hxl_that_libhxl_reads(register):
    run("release_figures", "--as-of", "2024-12-31")
    printed = run("figures", "--release", "1", "--format", "hxl")
    source = hxl.data(hxl.input.make_input(io.BytesIO(printed.encode()), hxl.InputOptions(allow_local=True)))
    rows = list(source)
    tags = [column.display_tag for column in source.columns]
    assert {"#meta+parameter", "#meta+value", "#meta+protection", "#meta+fewer_than_k"} <= set(tags)
    parameters = {row.get("#meta+parameter"): row.get("#meta+value") for row in rows if row.get("#meta+parameter")}
    assert parameters["name"] == "zcdp-discrete-gaussian" and "sigma" in parameters and "rho" in parameters
    total = next(row for row in rows if row.get("#meta+breakdown") == "total")
    assert total.get("#affected+children+reported") == "60" and total.get("#meta+protection") == "exact"


def test_the_xlsx_has_the_table_and_an_about_sheet(register):
    run("release_figures", "--as-of", "2024-12-31", "--note", "Checked by the secretariat.")
    release = Release.objects.get()
    workbook = load_workbook(io.BytesIO(exports.release_xlsx(release)))
    figures, about = workbook.worksheets
    header = [cell.value for cell in figures[1]]
    assert "protection" in header and "fewer_than_k" in header and "parameter" not in header
    total = next(
        row for row in figures.iter_rows(min_row=2, values_only=True) if row[header.index("breakdown")] == "total"
    )
    assert total[header.index("reported")] == 60 and total[header.index("protection")] == "exact"
    notes = {row[0]: row[1] for row in about.iter_rows(values_only=True)}
    assert notes["Release"] == "1" and notes["method.name"] == "zcdp-discrete-gaussian"
    assert float(notes["method.sigma"]) == pytest.approx(release.sigma)
    assert "differential privacy" in notes["Protected"] and notes["Note"] == "Checked by the secretariat."


def test_figures_refuses_a_release_that_is_not_published(register, ngo_a):
    host_supervisor = UserFactory(username="host-supervisor", organisation=ngo_a, role=Role.SUPERVISOR)
    ngo_a.is_host = True
    ngo_a.save(update_fields=["is_host"])
    releases.prepare_release(user=host_supervisor, as_of=D(2024, 12, 31))  # a draft: never printed
    for number in ("1", "2", "0", "-1", str(2**40)):
        with pytest.raises(CommandError, match="No approved release"):
            run("figures", "--release", number)
    with pytest.raises(CommandError):
        run("figures", "--release", "one")
    with pytest.raises(CommandError, match="leave out --as-of"):
        run("figures", "--release", "1", "--as-of", "2024-12-31")


def test_figures_as_of_still_prints_the_exact_register_wide_figures(register):
    run("release_figures", "--as-of", "2024-12-31")
    printed = json.loads(run("figures", "--as-of", "2024-12-31"))
    assert printed["totals"] == {"reported": 60, "repatriated": 20, "outstanding": 40}
    assert printed["by_oblast"]["UA-65"] == {"reported": 15, "repatriated": 5}  # exact, small cells and all
