"""A web request waits a bounded time for a row another transaction holds (settings.WEB_LOCK_TIMEOUT_SECONDS, set
for the processes config/wsgi.py starts), then answers "busy": a 503 that says nothing was changed, never a
500, and never a wait past gunicorn's timeout, which kills the worker and both its threads' requests."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection, transaction

from casework import audit_chain
from casework.models import AuditChainHead, Case, StatusChange
from tests.api_helpers import case_shared_for_update
from tests.thread_helpers import Halfway

ROOT = Path(__file__).resolve().parent.parent


def _options(entry_point: str, **environment: str) -> str | None:
    """The database OPTIONS' ``options`` of a process started as ``entry_point`` (nothing connects)."""
    code = (
        f"import {entry_point}; from django.conf import settings; import json;"
        "print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {}).get('options')))"
    )
    env = {
        **{key: value for key, value in os.environ.items() if key not in {"DJANGO_SERVES_REQUESTS"}},
        "DATABASE_URL": "postgres://register@127.0.0.1:5432/nowhere",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **environment,
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_web_processes_wait_ten_seconds_at_most_and_the_workers_as_long_as_it_takes():
    assert _options("config.wsgi") == "-c lock_timeout=10000"
    assert _options("config.wsgi", DJANGO_WEB_LOCK_TIMEOUT="25") == "-c lock_timeout=25000"
    assert _options("config.wsgi", DJANGO_WEB_LOCK_TIMEOUT="0") is None
    assert _options("config.celery_app") is None


class HistoryHeld:
    """Another connection holds the status history's chain head (as an import being written does) until exit."""

    def __enter__(self) -> HistoryHeld:
        # The head exists, as it does once any change was recorded (else both would wait on its creation).
        AuditChainHead.objects.get_or_create(
            table=StatusChange._meta.db_table, defaults={"last_hash": audit_chain.GENESIS}
        )

        def hold(pause: Callable[[], None]) -> None:
            with transaction.atomic(), audit_chain.appending(StatusChange):
                pause()

        self._holder = Halfway(hold).__enter__()
        with connection.cursor() as cursor:  # this connection waits as a web process's does, if less long
            cursor.execute("SET lock_timeout = '1s'")
        return self

    def __exit__(self, *exc_info: object) -> None:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
        self._holder.__exit__(*exc_info)


@pytest.fixture
def _postgresql(transactional_db) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's lock_timeout and row locks between two connections: set DATABASE_URL")


@pytest.mark.usefixtures("_postgresql")
def test_a_status_change_that_waits_too_long_is_busy_and_changes_nothing(client, caseworker, case, caplog):
    client.force_login(caseworker)
    payload = {"version": case.version, "occurred_on": "2023-02-01", "note": "", "via": "", "to_status": "located"}
    with HistoryHeld(), caplog.at_level(logging.INFO):
        response = client.post(f"/cases/{case.reference}/status/", payload)
    assert response.status_code == 503
    # Logged once, as a warning: not again by django.request as an error.
    logged = [
        (record.name, record.levelname) for record in caplog.records if record.name.startswith(("django", "config"))
    ]
    assert logged == [("config.errors", "WARNING")]
    assert response["Retry-After"] == "60"
    assert "The register is busy" in response.text and "Nothing was changed." in response.text
    case.refresh_from_db()
    assert (case.status, case.version) == ("reported", 1)
    assert not StatusChange.objects.filter(case=case).exists()
    # Sent again once the other transaction is done, it goes through.
    assert client.post(f"/cases/{case.reference}/status/", payload).status_code == 302
    assert Case.objects.get(pk=case.pk).status == "located"


@pytest.mark.usefixtures("_postgresql")
def test_an_api_status_change_that_waits_too_long_is_busy_in_the_apis_shape_and_can_be_sent_again(caplog):
    case, api = case_shared_for_update()
    body = {"status": "located", "occurred_on": dt.date.today().isoformat()}
    headers = {"HTTP_IF_MATCH": '"1"', "HTTP_IDEMPOTENCY_KEY": "busy-1"}
    url = f"/api/v1/cases/{case.reference}/status-changes/"
    with HistoryHeld(), caplog.at_level(logging.INFO):
        response = api.post(url, body, format="json", **headers)
    assert response.status_code == 503
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert response["Retry-After"] == "60"
    error = response.json()["error"]
    assert error["code"] == "busy" and "Nothing was changed" in error["message"]
    assert Case.objects.get(pk=case.pk).version == 1
    # The same key again: recorded now, not a replay of the refusal.
    again = api.post(url, body, format="json", **headers)
    assert again.status_code == 201, again.json()
    assert StatusChange.objects.filter(case=case).count() == 1
