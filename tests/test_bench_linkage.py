"""Linkage quality on the synthetic register, the many-pairs scorer against the one-pair one, the benchmark.

Every name is invented (devdata.people).
"""

from __future__ import annotations

import numpy as np
import pytest
from django.conf import settings

from bench import bench_linkage
from devdata.people import People
from linkage.columns import Columns, KeyIndex, candidates, score_pairs
from linkage.encoding import default_encoder
from linkage.matching import Record, pair_score, pairs_within
from tests.conftest import requires_postgres


def test_recall_and_precision_hold_at_the_default_score():
    measured = bench_linkage.quality(3000, seed=5)
    curve = measured["curve"]
    assert isinstance(curve, list)
    (_threshold, recall, precision, _proposed) = next(
        point for point in curve if point[0] == pytest.approx(settings.LINKAGE_REVIEW_SCORE)
    )
    assert recall >= 0.97, curve
    assert precision >= 0.97, curve
    # Higher scores propose fewer pairs and never lose precision by much: the curve is read in order.
    recalls = [point[1] for point in curve]
    assert recalls == sorted(recalls, reverse=True)


def _register(children: int, seed: int) -> tuple[list[Record], Columns]:
    people = People(seed)
    reports = list(people.reports(people.children(children), organisations=3, shared=0.5))
    encodings = list(default_encoder().encode_many(report.details for report in reports))
    records = [
        Record.of(id=i, organisation_id=r.organisation, encoding=e, sex=r.sex, oblast=r.oblast)
        for i, (r, e) in enumerate(zip(reports, encodings, strict=True))
    ]
    table = Columns.of(
        range(len(reports)),
        [r.organisation for r in reports],
        encodings,
        [r.sex for r in reports],
        [r.oblast for r in reports],
    )
    return records, table


def test_the_many_pairs_scorer_gives_the_one_pair_score():
    records, table = _register(600, seed=9)
    rng = np.random.default_rng(3)
    index = KeyIndex(table)
    near_a, near_b = index.neighbours(table.key_values, table.key_rows.astype(np.int64))
    random_a, random_b = rng.integers(0, len(records), 3000), rng.integers(0, len(records), 3000)
    a = np.concatenate([near_a, random_a]).astype(np.int64)
    b = np.concatenate([near_b, random_b]).astype(np.int64)
    many = score_pairs(table, a, table, b)
    for row_a, row_b, value in zip(a.tolist(), b.tolist(), many.tolist(), strict=True):
        one = pair_score(records[row_a], records[row_b])
        if one is None:
            assert np.isnan(value)
        else:
            assert value == pytest.approx(one, abs=1e-9)
    # Through the key index, the same pairs as the one-at-a-time blocking of linkage.matching.
    threshold = settings.LINKAGE_REVIEW_SCORE
    expected = {(p.a, p.b): p.score for p in pairs_within(records, threshold=threshold)}
    found = {(p.a, p.b): p.score for p in candidates(table, index, table, threshold=threshold)}
    assert found.keys() == expected.keys()
    assert all(found[pair] == pytest.approx(expected[pair], abs=1e-9) for pair in expected)


def test_the_benchmark_prints_quality_and_speed_rows(monkeypatch):
    monkeypatch.setattr(bench_linkage, "SCALE", 0.004)
    monkeypatch.setattr(bench_linkage, "FROM_DATABASE", False)  # its child process would not see the test database
    rows = bench_linkage.run()
    names = [row.benchmark for row in rows]
    assert any(name.startswith("linkage: recall") for name in names)
    assert any(name.startswith("linkage: precision") for name in names)
    assert "linkage: one new case's candidates" in names
    assert all(row.ok is not False for row in rows), rows


@requires_postgres
def test_the_benchmark_measures_the_job_from_the_database(db):
    register, new = 4000, 400
    path = bench_linkage._cache_path(register, new)
    if not path.exists():
        bench_linkage._build(path, register, new)
    written, new_ids = bench_linkage.load_register(path, register, new)
    assert written.startswith("written") and len(new_ids) == new
    assert bench_linkage.load_register(path, register, new) == ("in the database already", new_ids)
    measured = bench_linkage.measure_job(min(new_ids), max(new_ids))
    assert measured["found"] > 0 and measured["compared"] >= measured["kept"] > 0
    assert measured["rows"] == register + new and measured["single_runs"] >= 20
