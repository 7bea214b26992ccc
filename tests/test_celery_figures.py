"""A real Celery worker on Redis computes snapshots: from the page, after a crash, and never after a rollback.

A worker killed mid-snapshot is noticed by its silence (no heartbeat for
SNAPSHOT_STALL_SECONDS, a few seconds here): the sweep queues the snapshot
again, the page says so, and another worker finishes it once. A worker that
was only paused and finishes late writes nothing.

Needs Redis (REDIS_URL) and PostgreSQL (DATABASE_URL), as CI has: the worker
is a separate process (tests/celery_worker.py) that reads the test database.
Each test gives its worker a queue of its own, so that nothing else queued on
the same Redis reaches it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
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

from config import broker
from reports import services
from reports.models import Snapshot
from reports.tasks import sweep_stalled_snapshots_task
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
    process.log_path = log.name  # type: ignore[attr-defined]
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        log.close()
        print(Path(log.name).read_text(errors="replace")[-4000:])  # shown by pytest when the test fails
        os.unlink(log.name)


def log_of(process: subprocess.Popen[bytes]) -> str:
    return Path(process.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


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


# Seconds of silence after which a worker counts as lost (three minutes in production); it beats every second.
STALL = 5


def signed_in_client(user) -> Client:
    client = Client()
    client.get(reverse("login"))  # the first request loads the middleware, and its sign-in hooks, in this process
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_a_worker_killed_mid_snapshot_is_restarted_by_the_sweep_and_another_finishes_it_once(
    register, supervisor, queue, settings
):
    settings.SNAPSHOT_STALL_SECONDS = STALL
    snapshot = services.request_snapshot(user=supervisor, as_of=dt.date(2024, 12, 31))

    with worker(queue, FIGURES_TEST_DELAY_SECONDS="60", SNAPSHOT_STALL_SECONDS=str(STALL)) as first:
        wait_for(lambda: state(snapshot.pk).state == "running", what="the first worker to start the snapshot")
        claimed = state(snapshot.pk)
        # It beats while it computes (it pauses inside the computation for a minute).
        wait_for(lambda: state(snapshot.pk).heartbeat_at > claimed.heartbeat_at, timeout=10, what="a heartbeat")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    killed_at = time.monotonic()

    killed = state(snapshot.pk)
    assert killed.state == "running" and killed.attempts == 1 and killed.claim
    assert killed.exact is None and killed.finished_at is None
    assert killed.source_cases is None
    client = signed_in_client(supervisor)
    status_url = reverse("figures-snapshot-status", args=[snapshot.pk])
    assert client.get(status_url).json()["label"] == "Figures as of 31 Dec 2024: being computed."
    # Heard of a moment ago: not restarted yet.
    assert sweep_stalled_snapshots_task.apply().get() == {"restarted": 0, "requeued": 0, "failed": 0}

    # Beat runs the sweep every minute; here every fifth of a second, in this process, onto the test's queue.
    wait_for(
        lambda: sweep_stalled_snapshots_task.apply().get()["restarted"] == 1,
        timeout=STALL + 10,
        what="the sweep to restart the snapshot",
    )
    restarted_after = time.monotonic() - killed_at
    assert restarted_after <= STALL + 3, f"restarted {restarted_after:.1f} s after the kill"
    restarted = state(snapshot.pk)
    assert restarted.state == "queued" and restarted.claim == "" and restarted.restarted_at is not None
    status = client.get(status_url).json()
    assert status["state"] == "queued"
    assert "The computation stopped (its worker was lost) and was restarted at " in status["label"]
    assert status["label"] in client.get(reverse("figures")).content.decode()

    # A second worker, which also gets back the killed worker's message (its visibility timeout is 2 s here).
    with worker(queue, TEST_VISIBILITY_TIMEOUT="2") as second:
        wait_for(lambda: state(snapshot.pk).state == "done", what="the second worker to finish the snapshot")
        done_after = time.monotonic() - killed_at
        finished = state(snapshot.pk)
        wait_for(
            lambda: len(re.findall(r"reports\.compute_snapshot\[[^]]+\] succeeded", log_of(second))) >= 2,
            timeout=20,
            what="the killed worker's message to come back",
        )
    print(f"killed -> restarted {restarted_after:.1f} s, killed -> done {done_after:.1f} s (stall {STALL} s)")
    again = state(snapshot.pk)
    assert again.attempts == 2 and again.claim == ""
    assert (again.finished_at, again.exact) == (finished.finished_at, finished.exact)
    assert again.exact is not None
    assert again.exact["totals"]["reported"] == 12 and again.by_organisation is not None
    assert Snapshot.objects.count() == 1


def test_a_worker_paused_past_the_threshold_is_replaced_and_its_late_result_is_dropped(
    register, ngo_a, supervisor, queue, settings
):
    settings.SNAPSHOT_STALL_SECONDS = STALL
    snapshot = services.request_snapshot(user=supervisor, as_of=dt.date(2024, 12, 31))

    with worker(queue, FIGURES_TEST_DELAY_SECONDS="8", SNAPSHOT_STALL_SECONDS=str(STALL)) as first:
        wait_for(lambda: state(snapshot.pk).state == "running", what="the first worker to start the snapshot")
        claimed = state(snapshot.pk)
        wait_for(lambda: state(snapshot.pk).heartbeat_at > claimed.heartbeat_at, timeout=10, what="a heartbeat")
        os.killpg(first.pid, signal.SIGSTOP)  # frozen (a long pause, its machine cut off): no more heartbeats
        try:
            CaseFactory(organisation=ngo_a, reported_on=dt.date(2024, 6, 1))  # after the first worker read

            # The second worker runs the sweep as beat would send it (here every second) and the snapshot.
            with worker(queue, SNAPSHOT_STALL_SECONDS=str(STALL), FIGURES_QUEUE=queue):
                deadline = time.monotonic() + STALL + 30
                while state(snapshot.pk).state != "done" and time.monotonic() < deadline:
                    sweep_stalled_snapshots_task.apply_async(queue=queue)
                    time.sleep(1)
                finished = state(snapshot.pk)
        finally:
            os.killpg(first.pid, signal.SIGCONT)
        assert finished.state == "done" and finished.attempts == 2 and finished.restarted_at is not None
        assert finished.source_cases == 13 and finished.exact["totals"]["reported"] == 13

        # Woken, the first worker finishes its computation (12 cases) and finds its claim gone.
        wait_for(lambda: "its result is dropped" in log_of(first), timeout=30, what="the first worker to finish")
    again = state(snapshot.pk)
    assert (again.finished_at, again.exact, again.source_cases) == (finished.finished_at, finished.exact, 13)
    assert again.attempts == 2 and again.state == "done"


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
