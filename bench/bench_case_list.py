"""The caseworker's case list at 1,000,000 cases: a filtered, sorted page, rendered in-process.

A caseworker of ``bench-large`` (the million synthetic cases of bench_generate)
asks for located cases from Donetsk oblast, latest status change first: the
whole view, template included, through Django's test client. Also measured,
without a target: the unfiltered first page, a reference search, a deep page,
and the number of queries (the same whatever the page size).
"""

from __future__ import annotations

import statistics
import sys
import time

from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from accounts.models import Organisation, Role, User
from bench.common import Row, ratio
from casework.models import Case

ORGANISATION = "bench-large"
SIZE = 1_000_000
REQUESTS = 20
TARGET_MS = 100.0
FILTERED = "/cases/?status=located&oblast=UA-14&sort=-changed"
BENCH_USER = "bench-caseworker"


def _ensure_cases() -> int:
    existing = Case.objects.filter(organisation__slug=ORGANISATION).count()
    if existing >= SIZE:
        return existing
    print(f"   {ORGANISATION} has {existing:,} cases: generating the rest", file=sys.stderr, flush=True)
    try:
        # The generation benchmark times and records the run, so that its own row stays meaningful.
        from bench import bench_generate

        bench_generate.run()
    except ImportError:
        from django.core.management import call_command

        call_command("generate_cases", "--cases", str(SIZE - existing), "--organisation", ORGANISATION)
    # As autovacuum leaves a register some minutes after a bulk load: statistics, and the visibility map
    # that lets a count or a page read the indexes alone (freshly COPYed, every row is read from the table
    # too). Quick when nothing changed since the last run. Outside a transaction, as VACUUM must be.
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {Case._meta.db_table}")
    return Case.objects.filter(organisation__slug=ORGANISATION).count()


def _caseworker() -> User:
    organisation = Organisation.objects.get(slug=ORGANISATION)
    user, _created = User.objects.get_or_create(
        username=BENCH_USER, defaults={"organisation": organisation, "role": Role.CASEWORKER}
    )
    return user


def _time(client: Client, url: str) -> tuple[float, float, int]:
    """Median and slowest of REQUESTS requests, in ms, after two to warm up; and the queries of one."""
    for _warm_up in range(2):
        response = client.get(url, secure=True)
        assert response.status_code == 200, (url, response.status_code)
    timings = []
    for _request in range(REQUESTS):
        started = time.perf_counter()
        response = client.get(url, secure=True)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        client.get(url, secure=True)
    return statistics.median(timings), max(timings), len(queries)


def sign_in_floor() -> float:
    """The floor of the in-process figures, measured in the same run: the median of the sign-in page (a
    template and a CSRF token, no query) through the same test client, in ms."""
    with override_settings(ALLOWED_HOSTS=["testserver"], STORAGES=_STORAGES):
        median, _slowest, _queries = _time(Client(), "/accounts/login/")
    return median


# In-process requests, as the test client makes them; static files unhashed, as in the tests
# (production serves the manifest that collectstatic builds).
_STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


def run() -> list[Row]:
    try:
        total = _ensure_cases()
    except Exception as error:  # the generator is another module's: say why, don't stop the other benches
        return [Row("case list page", "-", f"skipped: could not generate the cases ({error})")]
    size = f"{total:,} cases"
    client = Client()
    floor = sign_in_floor()
    floor_text = f"{floor:.1f} ms, sign-in page in-process"
    with override_settings(ALLOWED_HOSTS=["testserver"], STORAGES=_STORAGES):
        # As a person would: the sign-in page first (it also loads the middleware and their signal receivers).
        client.get("/accounts/login/", secure=True)
        client.force_login(_caseworker())
        median, slowest, queries = _time(client, FILTERED)
        rows = [
            Row(
                "case list page: status+oblast, by last change",
                size,
                f"median {median:.1f} ms, max {slowest:.1f} ms, {queries} queries",
                f"< {TARGET_MS:.0f} ms",
                median < TARGET_MS,
                floor=floor_text,
                ratio=ratio(median, floor),
            )
        ]
        reference = Case.objects.filter(organisation__slug=ORGANISATION).values_list("reference", flat=True).first()
        for label, url in (
            ("case list page: no filter, newest report", "/cases/"),
            ("case list page: page 200 of the filtered list", f"{FILTERED}&page=200"),
            ("case list page: search by full reference", f"/cases/?q={reference}"),
        ):
            median, slowest, queries = _time(client, url)
            figure = f"median {median:.1f} ms, max {slowest:.1f} ms, {queries} queries"
            rows.append(Row(label, size, figure, floor=floor_text, ratio=ratio(median, floor)))
    return rows
