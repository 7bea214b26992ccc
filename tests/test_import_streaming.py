"""The importer streams: its memory does not grow with the rows, and a big import is still all or nothing.

Runs on SQLite and on PostgreSQL (COPY), whichever DATABASE_URL names. Every file here is synthetic.
"""

from __future__ import annotations

import datetime as dt
import gc
import tracemalloc
from pathlib import Path

import pytest

from accounts.models import Organisation
from casework import audit_chain
from casework.importing import ImportErrors, apply_import, plan_import
from casework.models import Case, StatusChange

CASE_HEADER = "source_ref,sex,birth_year,oblast,reported_on,displaced_on,placement,institution,source"
EVENT_HEADER = "source_ref,status,occurred_on,via,duplicate_of,note"
TODAY = dt.date(2025, 6, 1)


def write_files(directory: Path, cases: int, *, last_event: str | None = None) -> tuple[Path, Path]:
    """``cases`` cases, each verified then located (or withdrawn, with a note containing a tab)."""
    cases_path, events_path = directory / "cases.csv", directory / "events.csv"
    with cases_path.open("w", encoding="utf-8") as out:
        out.write(CASE_HEADER + "\n")
        for n in range(cases):
            displaced = ("2022-03", "2022-04-05", "")[n % 3]
            out.write(f"S-{n:06d},{'FMU'[n % 3]},{2010 + n % 8},UA-14,2023-01-{1 + n % 28:02d},{displaced},,,\n")
    with events_path.open("w", encoding="utf-8") as out:
        out.write(EVENT_HEADER + "\n")
        for n in range(cases):
            out.write(f"S-{n:06d},verified,2023-02-{1 + n % 28:02d},,,\n")
        for n in range(cases):
            if n % 10 == 9:
                out.write(f'S-{n:06d},withdrawn,2023-03-01,,,"Mistaken\treport, filed twice"\n')
            else:
                out.write(f"S-{n:06d},located,2023-03-01,,,\n")
        if last_event is not None:
            out.write(last_event + "\n")
    return cases_path, events_path


class _Discard:
    def write(self, text: str) -> int:
        return len(text)


def _peak(directory: Path, organisation: Organisation, cases: int) -> int:
    cases_path, events_path = write_files(directory, cases)
    gc.collect()
    tracemalloc.start()
    try:
        plan = plan_import(cases_file=cases_path, events_file=events_path, organisation=organisation, today=TODAY)
        apply_import(plan, references_out=_Discard())
        del plan
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_rows(tmp_path: Path, ngo_a: Organisation, ngo_b: Organisation) -> None:
    small_dir, large_dir = tmp_path / "small", tmp_path / "large"
    small_dir.mkdir()
    large_dir.mkdir()
    small = _peak(small_dir, ngo_a, 2_000)  # 6,000 rows
    large = _peak(large_dir, ngo_b, 20_000)  # 60,000 rows

    assert Case.objects.filter(organisation=ngo_b).count() == 20_000
    # Keeping the rows cost about 3 KB a case (9,000 bytes for 3 rows); what grows now is a few numbers per
    # case and change in arrays (about 100 bytes a case with its two changes; more on SQLite, whose inserts
    # return every id).
    per_case = (large - small) / 18_000
    assert per_case < 300, (small, large, per_case)
    assert large < 2.5 * small, (small, large)


def test_an_error_in_the_last_row_of_a_big_file_writes_nothing(tmp_path: Path, ngo_a: Organisation) -> None:
    cases_path, events_path = write_files(tmp_path, 5_000, last_event="S-000001,verified,2023-04-01,,,")
    before = (Case.objects.count(), StatusChange.objects.count())

    with pytest.raises(ImportErrors) as raised:
        plan_import(cases_file=cases_path, events_file=events_path, organisation=ngo_a, today=TODAY)

    # Back from located to verified: a correction, which needs a reason.
    assert [str(problem).split(": ")[:2] for problem in raised.value.errors] == [["events.csv:10002", "note"]]
    assert (Case.objects.count(), StatusChange.objects.count()) == before


def test_a_file_changed_after_its_check_is_refused_after_writing_and_nothing_is_kept(
    tmp_path: Path, ngo_a: Organisation
) -> None:
    cases_path, events_path = write_files(tmp_path, 3_000)
    plan = plan_import(cases_file=cases_path, events_file=events_path, organisation=ngo_a, today=TODAY)
    before = (Case.objects.count(), StatusChange.objects.count())
    # The last row changes (same length): found only once every row before it was written.
    text = events_path.read_text(encoding="utf-8")
    events_path.write_text(text[: -len("located,2023-03-01,,,\n")] + "located,2023-03-02,,,\n", encoding="utf-8")

    with pytest.raises(ImportErrors) as raised:
        apply_import(plan)

    assert [problem.file for problem in raised.value.errors] == ["events.csv"]
    assert "changed after it was checked" in str(raised.value)
    assert (Case.objects.count(), StatusChange.objects.count()) == before


def test_a_streamed_import_writes_every_row_as_the_checks_found_it(tmp_path: Path, ngo_a: Organisation) -> None:
    cases_path, events_path = write_files(tmp_path, 2_500)
    plan = plan_import(cases_file=cases_path, events_file=events_path, organisation=ngo_a, today=TODAY)

    result = apply_import(plan)

    assert (result.cases, result.events) == (2_500, 5_000)
    assert len({reference for _ref, reference in result.references}) == 2_500
    cases = Case.objects.filter(organisation=ngo_a)
    assert cases.filter(status="located", version=3).count() == 2_250
    assert cases.filter(status="withdrawn", version=3).count() == 250
    assert cases.filter(displaced_precision="month", displaced_on__day=1).count() == 834
    withdrawn = StatusChange.objects.filter(to_status="withdrawn").first()
    assert withdrawn is not None and withdrawn.note == "Mistaken\treport, filed twice"
    assert withdrawn.from_status == "verified" and withdrawn.version == 3 and not withdrawn.is_correction
    assert all(report.intact for report in audit_chain.verify_all())
