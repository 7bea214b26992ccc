"""The partner API's case list at scale, in process, beside the sign-in page in process (under load: bench_load).

A partner organisation ``bench-partner`` has 100,000 of the 1,000,000 cases of
``bench-large`` shared with it (the data of bench_generate).
"""

from __future__ import annotations

import statistics
import time

from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench.common import Row, ratio

LARGE = "bench-large"
PARTNER = "bench-partner"
SHARED = 100_000


def _prepare() -> tuple[str, int] | None:
    from accounts.models import Organisation
    from casework.models import Case
    from partners import tokens
    from partners.models import Share

    owner = Organisation.objects.filter(slug=LARGE).first()
    if owner is None or not Case.objects.filter(organisation=owner).exists():
        return None
    partner, _ = Organisation.objects.get_or_create(slug=PARTNER, defaults={"name": "Bench partner", "kind": "ngo"})
    have = Share.objects.active().filter(partner=partner).count()
    if have < SHARED:
        # One INSERT ... SELECT: a bulk share of every 10th case.
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO partners_share (case_id, owner_id, partner_id, scope, created_at)
                SELECT id, organisation_id, %s, 'read', now() FROM (
                    SELECT id, organisation_id FROM casework_case
                    WHERE organisation_id = %s AND NOT EXISTS (
                        SELECT 1 FROM partners_share s WHERE s.case_id = casework_case.id AND s.partner_id = %s
                    )
                    ORDER BY id LIMIT %s
                ) picked
                """,
                [partner.pk, owner.pk, partner.pk, SHARED - have],
            )
            cursor.execute("ANALYZE partners_share")
    _token, plain = tokens.create_token(organisation=partner, scope="read", created_by=None, name="bench")
    total = Case.objects.filter(organisation=owner).count()
    return plain, total


def _in_process(plain: str) -> tuple[float, float, dict[int, int]]:
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    url = "/api/v1/cases/?page_size=100"
    client.get(url)
    timings = []
    next_url = url
    for _ in range(40):
        started = time.perf_counter()
        response = client.get(next_url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.content[:300]
        next_url = response.json()["next"] or url
    queries = {}
    for size in (10, 100):
        with CaptureQueriesContext(connection) as captured:
            client.get(f"/api/v1/cases/?page_size={size}")
        queries[size] = len(captured)
    return statistics.median(timings), max(timings), queries


def run() -> list[Row]:
    prepared = _prepare()
    if prepared is None:
        return [Row("API case list", "-", f"skipped: no {LARGE} data (run bench_generate first)")]
    plain, total = prepared
    from bench.bench_case_list import sign_in_floor

    median_ms, worst_ms, queries = _in_process(plain)
    floor = sign_in_floor()
    rows = [
        Row(
            "API case list, page of 100, in-process",
            f"{SHARED:,} shared / {total:,}",
            f"median {median_ms:.1f} ms (max {worst_ms:.1f} ms)",
            "< 30 ms",
            median_ms < 30,
            floor=f"{floor:.1f} ms, sign-in page in-process",
            ratio=ratio(median_ms, floor),
        ),
        Row(
            "API case list, queries per request",
            "page 10 vs 100",
            f"{queries[10]} vs {queries[100]}",
            "constant",
            queries[10] == queries[100],
        ),
    ]
    # Under load, beside the sign-in page on the same server: bench_load.
    return rows
