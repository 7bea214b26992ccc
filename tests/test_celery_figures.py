"""A real Celery worker on Redis computes snapshots: from the page, after a crash, and never after a rollback.

Needs Redis (REDIS_URL) and PostgreSQL (DATABASE_URL), as CI has: the worker
is a separate process (tests/celery_worker.py) that reads the test database.
Each test gives its worker a queue of its own, so that nothing else queued on
the same Redis reaches it.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from reports import broker, services
from reports.models import Snapshot
from tests.factories import CaseFactory

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"), reason="needs Redis and a Celery worker: set REDIS_URL (CI does)"
    ),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
        reason="needs PostgreSQL, which a worker process can share with the tests: set DATABASE_URL (CI does)",
    ),
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def queue(settings) -> Iterator[str]:
    name = f"figures-test-{uuid.uuid4().hex[:10]}"
    settings.FIGURES_QUEUE = name
    broker.forget()
    yield name
    client = redis.Redis.from_url(str(django_settings.REDIS_URL))
    client.delete(name)
    client.close()


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "postgres")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def worker(queue: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """A worker process on the test database; killed (and reaped) when the block ends, whatever happens."""
    log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.celery_worker",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
            "-Q",
            queue,
            "-n",
            f"{queue}-{uuid.uuid4().hex[:4]}@%h",
        ],
        cwd=ROOT,
        # The worker migrates nothing: it connects as the tests do, and never as the tables' owner.
        env={
            **{k: v for k, v in os.environ.items() if k != "MIGRATION_DATABASE_URL"},
            "DATABASE_URL": _database_url(),
            "DJANGO_DEBUG": "0",
            **env,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        log.close()
        print(Path(log.name).read_text(errors="replace")[-4000:])  # shown by pytest when the test fails
        os.unlink(log.name)


def wait_for(condition: Callable[[], bool], *, timeout: float = 60, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def state(snapshot_id: int) -> Snapshot:
    return Snapshot.objects.get(pk=snapshot_id)


@pytest.fixture
def register(ngo_a, supervisor):
    for index in range(12):
        CaseFactory(organisation=ngo_a, reported_on=dt.date(2024, 1, 1) + dt.timedelta(days=index))


def test_a_snapshot_requested_on_the_page_is_computed_by_the_worker(register, supervisor, queue):
    client = Client()
    client.get(reverse("login"))  # the first request loads the middleware, and its sign-in hooks, in this process
    assert client.login(username=supervisor.username, password=PASSWORD)
    response = client.post(reverse("figures-request"), {"as_of": "2024-12-31"})
    snapshot = Snapshot.objects.get()
    assert response["Location"] == f"{reverse('figures')}?requested={snapshot.pk}"
    status_url = reverse("figures-snapshot-status", args=[snapshot.pk])
    assert client.get(status_url).json()["state"] == "queued"  # no worker yet: it waits on the queue
    page = client.get(response["Location"]).content.decode()
    assert f'data-status-url="{status_url}"' in page

    with worker(queue):
        wait_for(lambda: state(snapshot.pk).state == "done", what="the worker to compute the snapshot")
    status = client.get(status_url).json()
    assert status["state"] == "done" and status["done"] is True
    done = state(snapshot.pk)
    assert done.exact is not None
    assert done.exact["totals"] == {"reported": 12, "repatriated": 0, "outstanding": 12}
    assert done.attempts == 1


def test_a_worker_killed_mid_snapshot_leaves_nothing_half_done_and_a_restarted_one_finishes_it_once(
    register, supervisor, queue
):
    snapshot = services.request_snapshot(user=supervisor, as_of=dt.date(2024, 12, 31))

    with worker(queue, FIGURES_TEST_DELAY_SECONDS="60") as first:
        wait_for(lambda: state(snapshot.pk).state == "running", what="the first worker to start the snapshot")
        time.sleep(1.5)  # well inside the computing transaction (it pauses there for a minute)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)

    killed = state(snapshot.pk)
    assert killed.state == "running" and killed.attempts == 1
    assert killed.exact is None and killed.published is None and killed.finished_at is None
    assert killed.source_cases is None

    # The message was never acknowledged: a new worker gets it back once its visibility timeout passes.
    with worker(queue, TEST_VISIBILITY_TIMEOUT="2"):
        wait_for(lambda: state(snapshot.pk).state == "done", what="the restarted worker to finish the snapshot")
        finished = state(snapshot.pk)
        time.sleep(3)  # a duplicate delivery, if any, must change nothing
    again = state(snapshot.pk)
    assert again.attempts == 2
    assert (again.finished_at, again.exact) == (finished.finished_at, finished.exact)
    assert again.exact is not None
    assert again.exact["totals"]["reported"] == 12 and again.published is not None
    assert Snapshot.objects.count() == 1


def test_a_rolled_back_transaction_queues_nothing(register, analyst, queue):
    client = redis.Redis.from_url(str(django_settings.REDIS_URL))
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.request_snapshot(user=analyst, as_of=dt.date(2024, 12, 31))
            raise RuntimeError("something else in the same transaction failed")
        assert not Snapshot.objects.exists()
        assert client.llen(queue) == 0

        services.request_snapshot(user=analyst, as_of=dt.date(2024, 12, 31))
        assert client.llen(queue) == 1  # the same call, committed, does queue
    finally:
        client.close()
