"""An import's job in bulk: the register read at once (linkage.register), the waiting cases scored
against it; the same pairs as case by case, progress, idempotency, stale pairs dropped, decided ones kept.

Runs on the test database of DATABASE_URL: SQLite reads through the ORM, PostgreSQL through COPY.
Every name is invented (devdata.people).
"""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from accounts.models import Organisation
from devdata.people import People
from linkage import register, services
from linkage.columns import Columns, KeyIndex
from linkage.models import BlockKey, Candidate, CaseEncoding, MatchJob
from tests.factories import CaseFactory, OrganisationFactory


@pytest.fixture
def reported(db):
    """120 children reported by three organisations (half of them by two or three): about 200 cases,
    each encoded and waiting for its candidates."""
    organisations = [OrganisationFactory(slug=f"ngo-{n}", name=f"NGO {n} (synthetic)") for n in range(3)]
    people = People(seed=21)
    cases = []
    for report in people.reports(people.children(120), organisations=3, shared=0.5):
        case = CaseFactory(organisation=organisations[report.organisation], sex=report.sex, oblast=report.oblast)
        services.receive_case_details(case, report.details)
        cases.append(case.pk)
    return cases


def _pairs() -> dict[tuple[int, int], tuple[float, bool]]:
    return {
        (a, b): (score, across)
        for a, b, score, across in Candidate.objects.values_list(
            "case_a_id", "case_b_id", "score", "across_organisations"
        )
    }


def _same(found: dict[tuple[int, int], tuple[float, bool]], expected: dict[tuple[int, int], tuple[float, bool]]):
    assert found.keys() == expected.keys()
    for pair, (score, across) in expected.items():
        assert found[pair][0] == pytest.approx(score, abs=1e-9)
        assert found[pair][1] == across


def test_the_loaded_register_is_what_matching_reads_case_by_case(reported):
    CaseEncoding.objects.filter(case_id__in=reported[:50]).update(matched_at="2025-01-01T00:00:00Z")
    loaded = register.load()
    records = services.load_records(reported)
    expected = Columns.of_records([records[case_id] for case_id in sorted(records)])
    table = loaded.table
    assert table.ids.tolist() == sorted(records)
    for name in ("organisations", "bits", "counts", "sexes", "oblasts"):
        assert np.array_equal(getattr(table, name), getattr(expected, name)), name
    assert loaded.waiting.tolist() == [case_id not in set(reported[:50]) for case_id in table.ids.tolist()]
    # The keys: each case's, ordered by row.
    assert np.all(np.diff(loaded.key_rows) >= 0)
    by_case = {(case_id, key) for case_id, key in BlockKey.objects.values_list("case_id", "key")}
    assert {(int(table.ids[row]), int(key)) for row, key in zip(loaded.key_rows, loaded.key_values, strict=True)} == (
        by_case
    )
    assert len(loaded.key_values) == len(by_case)


def test_the_index_built_in_place_is_the_index(reported):
    loaded = register.load()
    keyed = Columns(**{**loaded.table.__dict__, "key_values": loaded.key_values.copy(), "key_rows": loaded.key_rows})
    copied = KeyIndex(keyed, max_block=3)
    built = KeyIndex.consuming(loaded.key_values, loaded.key_rows, max_block=3)
    for name in ("rows", "keys", "starts", "sizes"):
        assert np.array_equal(getattr(copied, name), getattr(built, name)), name
    assert np.all(np.diff(loaded.key_values) >= 0)  # consumed: sorted in place


def test_the_job_in_bulk_finds_the_pairs_found_case_by_case(reported):
    services.match_cases(reported)
    expected = _pairs()
    assert len(expected) > 20
    Candidate.objects.all().delete()
    CaseEncoding.objects.update(matched_at=None)
    job = MatchJob.objects.create(total=len(reported))
    done = services.run_job(job.pk, chunk=37, in_bulk=True)
    assert done is not None
    assert (done.state, done.done, done.found, done.percent) == ("done", len(reported), done.found, 100)
    assert done.found >= len(expected)  # pairs of two cases waiting are counted with each
    _same(_pairs(), expected)
    assert services.waiting_count() == 0
    # Idempotent: run again, nothing is doubled; a new job with nothing waiting finds nothing.
    assert services.run_job(job.pk, in_bulk=True).state == "done"
    again = services.run_job(MatchJob.objects.create(total=0).pk, in_bulk=True)
    assert again is not None and again.found == 0
    _same(_pairs(), expected)


def test_the_job_in_bulk_matches_new_cases_against_the_matched_register(reported):
    services.match_cases(reported)
    expected = _pairs()
    # The last 60 cases arrive by an import: their pairs are dropped, they wait again.
    new = reported[-60:]
    Candidate.objects.filter(case_b_id__in=new).delete()
    CaseEncoding.objects.filter(case_id__in=new).update(matched_at=None)
    # A stale undecided pair of a new case is dropped; a decided one that no longer scores stays.
    first_org = Organisation.objects.get(slug="ngo-0")
    stale = Candidate.objects.create(case_a_id=reported[0], case_b_id=new[0], score=0.9, across_organisations=True)
    decided = Candidate.objects.create(
        case_a_id=reported[1], case_b_id=new[1], score=0.9, across_organisations=False, decision="different"
    )
    assert first_org is not None
    assert (reported[0], new[0]) not in expected and (reported[1], new[1]) not in expected
    services.match_in_bulk(chunk=25)
    found = _pairs()
    assert not Candidate.objects.filter(pk=stale.pk).exists()
    assert found.pop((reported[1], new[1])) == (0.9, False) and Candidate.objects.get(pk=decided.pk).decision
    _same(found, expected)


def test_a_case_held_by_another_job_or_edited_meanwhile_is_left_waiting(reported, monkeypatch):
    CaseEncoding.objects.update(matched_at=None)
    real_load = register.load

    def load_then_edit():
        loaded = real_load()
        # A caseworker edits a case after the register was read: its encodings are newer than the ones read.
        CaseEncoding.objects.filter(case_id=reported[3]).update(encoded_at=loaded.loaded_at.replace(year=2999))
        return loaded

    monkeypatch.setattr(register, "load", load_then_edit)
    services.match_in_bulk(chunk=50)
    assert list(CaseEncoding.objects.filter(matched_at__isnull=True).values_list("case_id", flat=True)) == [reported[3]]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY stream's parser (PostgreSQL)")
def test_the_copy_stream_is_read_in_small_pieces(reported, monkeypatch):
    whole = register.load()
    monkeypatch.setattr(register, "PARSE_BYTES", 1000)
    pieces = register.load()
    assert np.array_equal(whole.table.bits, pieces.table.bits)
    assert np.array_equal(whole.key_values, pieces.key_values) and np.array_equal(whole.key_rows, pieces.key_rows)
