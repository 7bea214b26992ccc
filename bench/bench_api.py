"""The partner API's case list at scale: in-process latency, then gunicorn under wrk.

A partner organisation ``bench-partner`` has 100,000 of the 1,000,000 cases of
``bench-large`` shared with it (the data of bench_generate).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench.common import Row

LARGE = "bench-large"
PARTNER = "bench-partner"
SHARED = 100_000
ROOT = Path(__file__).resolve().parent.parent


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


def _wrk(plain: str) -> Row | None:
    if not shutil.which("wrk") or connection.vendor != "postgresql":
        return None
    port = 8765
    env = {
        **os.environ,
        "API_THROTTLE_RATE": "100000000/minute",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_DEBUG": "0",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/schema/", timeout=1)
                break
            except Exception:
                time.sleep(0.2)
        result = subprocess.run(
            [
                "wrk",
                "-t2",
                "-c8",
                "-d30s",
                "--latency",
                "-H",
                f"Authorization: Bearer {plain}",
                f"http://127.0.0.1:{port}/api/v1/cases/?page_size=100",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    out = result.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"\s50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"\s99%\s+([\d.]+\w+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figure = (
        f"{rps.group(1) if rps else '?'} req/s, p50 {p50.group(1) if p50 else '?'}, "
        f"p99 {p99.group(1) if p99 else '?'}, non-2xx {non2xx.group(1) if non2xx else 0}"
    )
    return Row("API list under wrk 30 s (gunicorn -w 2, 8 conns)", "100k shared / 1M", figure)


def run() -> list[Row]:
    prepared = _prepare()
    if prepared is None:
        return [Row("API case list", "-", f"skipped: no {LARGE} data (run bench_generate first)")]
    plain, total = prepared
    median_ms, worst_ms, queries = _in_process(plain)
    rows = [
        Row(
            "API case list, page of 100, in-process",
            f"{SHARED:,} shared / {total:,}",
            f"median {median_ms:.1f} ms (max {worst_ms:.1f} ms)",
            "< 30 ms",
            median_ms < 30,
        ),
        Row(
            "API case list, queries per request",
            "page 10 vs 100",
            f"{queries[10]} vs {queries[100]}",
            "constant",
            queries[10] == queries[100],
        ),
    ]
    wrk_row = _wrk(plain)
    if wrk_row is not None:
        rows.append(wrk_row)
    return rows
