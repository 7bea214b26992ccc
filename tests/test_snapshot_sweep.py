"""A snapshot whose worker was lost is restarted by the sweep within minutes, once, and never overwritten late.

Time is moved by setting the heartbeat in the past (the sweep compares it with
the database's clock). tests/test_celery_figures.py kills a real worker.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from unittest import mock

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import formats, timezone

from reports import services, views
from reports.models import Snapshot
from reports.tasks import compute_snapshot_task, sweep_stalled_snapshots_task
from tests.conftest import requires_postgres
from tests.factories import CaseFactory
from tests.test_figures_views import signed_in

STALL = 180


@pytest.fixture(autouse=True)
def queued(settings):
    """The task's apply_async, running the task in-process (test_celery_figures: a real worker)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.SNAPSHOT_STALL_SECONDS = STALL
    with mock.patch.object(
        compute_snapshot_task, "apply_async", side_effect=lambda args, **options: compute_snapshot_task.apply(args=args)
    ) as apply_async:
        yield apply_async


@pytest.fixture
def register(ngo_a):
    for index in range(6):
        CaseFactory(organisation=ngo_a, reported_on=dt.date(2024, 1, 1) + dt.timedelta(days=index))


def ago(seconds: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=seconds)


def running(*, silent_for: float, attempts: int = 1, claim: str = "claim-of-a-lost-worker", **fields) -> Snapshot:
    """A snapshot a worker claimed, whose last heartbeat was ``silent_for`` seconds ago."""
    return Snapshot.objects.create(
        as_of=dt.date(2024, 12, 31),
        trigger="request",
        min_cell=5,
        state="running",
        claim=claim,
        attempts=attempts,
        started_at=ago(silent_for + 1),
        heartbeat_at=ago(silent_for),
        **fields,
    )


def sweep_without_running_the_tasks(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        sweep = services.sweep_stalled_snapshots()
    return sweep, callbacks


pytestmark = pytest.mark.django_db


def test_it_restarts_a_snapshot_whose_worker_went_silent_and_a_worker_finishes_it(
    register, django_capture_on_commit_callbacks
):
    lost = running(silent_for=STALL + 5)
    sweep, callbacks = sweep_without_running_the_tasks(django_capture_on_commit_callbacks)
    assert (sweep.restarted, sweep.requeued, sweep.failed) == ([lost.pk], [], [])
    assert len(callbacks) == 1  # its task is queued again, after commit
    lost.refresh_from_db()
    assert lost.state == "queued" and lost.claim == "" and lost.attempts == 1
    assert lost.restarted_at is not None and lost.heartbeat_at > ago(STALL)
    assert lost.exact is None

    callbacks[0]()  # a worker gets the task
    lost.refresh_from_db()
    assert lost.state == "done" and lost.attempts == 2 and lost.exact["totals"]["reported"] == 6
    assert lost.restarted_at is not None and lost.claim == ""


def test_it_leaves_alone_a_snapshot_whose_worker_is_alive(register, django_capture_on_commit_callbacks, queued):
    alive = running(silent_for=STALL - 10)
    queued_now = Snapshot.objects.create(as_of=dt.date(2024, 12, 31), trigger="request", min_cell=5)
    sweep, callbacks = sweep_without_running_the_tasks(django_capture_on_commit_callbacks)
    assert (sweep.restarted, sweep.requeued, sweep.failed) == ([], [], [])
    assert callbacks == []
    alive.refresh_from_db()
    queued_now.refresh_from_db()
    assert (alive.state, alive.claim, alive.restarted_at) == ("running", "claim-of-a-lost-worker", None)
    assert queued_now.state == "queued"


def test_the_threshold_is_a_setting(register, settings, django_capture_on_commit_callbacks):
    settings.SNAPSHOT_STALL_SECONDS = 30
    quiet = running(silent_for=40)
    sweep, _callbacks = sweep_without_running_the_tasks(django_capture_on_commit_callbacks)
    assert sweep.restarted == [quiet.pk]


def test_two_sweeps_that_saw_the_same_silent_snapshot_restart_it_once(register, django_capture_on_commit_callbacks):
    lost = running(silent_for=STALL + 5, attempts=2)
    seen = {"snapshot_id": lost.pk, "state": "running", "claim": lost.claim, "attempts": 2}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = services.sweep_snapshot(**seen)
        second = services.sweep_snapshot(**seen)  # read before the first one wrote
        third = services.sweep_stalled_snapshots()
    assert (first, second, third.restarted) == ("restarted", None, [])
    assert len(callbacks) == 1


def test_it_does_not_restart_a_snapshot_whose_worker_beat_after_the_sweep_looked(
    register, django_capture_on_commit_callbacks
):
    slow = running(silent_for=STALL + 5)
    seen = {"snapshot_id": slow.pk, "state": "running", "claim": slow.claim, "attempts": 1}
    assert services.beat(snapshot_id=slow.pk, claim=slow.claim) is True  # it was only slow
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.sweep_snapshot(**seen) is None
    assert callbacks == []
    slow.refresh_from_db()
    assert slow.state == "running" and slow.claim == "claim-of-a-lost-worker"


def test_it_fails_a_snapshot_after_the_last_attempt_and_says_so(
    register, supervisor, django_capture_on_commit_callbacks
):
    lost = running(silent_for=STALL + 5, attempts=services.MAX_ATTEMPTS)
    sweep, callbacks = sweep_without_running_the_tasks(django_capture_on_commit_callbacks)
    assert sweep.failed == [lost.pk] and sweep.restarted == [] and callbacks == []
    lost.refresh_from_db()
    assert lost.state == "failed" and lost.finished_at is not None and lost.exact is None
    assert lost.error.startswith(f"Gave up after {services.MAX_ATTEMPTS} attempts")
    status = signed_in(supervisor).get(reverse("figures-snapshot-status", args=[lost.pk])).json()
    assert status["finished"] is True
    assert status["label"] == f"Figures as of 31 Dec 2024: failed. {lost.error}"


def test_it_sends_again_a_snapshot_queued_for_too_long_without_calling_it_a_restart(
    register, django_capture_on_commit_callbacks
):
    # Its message was lost with the broker's data (or it waited behind a long queue: a copy is harmless).
    waiting = Snapshot.objects.create(
        as_of=dt.date(2025, 1, 1), trigger="request", min_cell=5, requested_at=timezone.now() - dt.timedelta(days=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        sweep = services.sweep_stalled_snapshots()
    assert sweep.requeued == [waiting.pk] and sweep.restarted == []
    waiting.refresh_from_db()
    assert waiting.state == "done" and waiting.restarted_at is None and waiting.attempts == 1


def test_the_nightly_beat_leaves_lost_snapshots_to_the_sweep(register, django_capture_on_commit_callbacks):
    lost = running(silent_for=STALL + 5)
    with django_capture_on_commit_callbacks(execute=True):
        services.schedule_nightly(today=dt.date(2025, 2, 3))
    lost.refresh_from_db()
    assert lost.state == "running"


def test_the_task_sweeps_and_counts(register, django_capture_on_commit_callbacks):
    running(silent_for=STALL + 5)
    running(silent_for=STALL + 5, attempts=services.MAX_ATTEMPTS, claim="another")
    with django_capture_on_commit_callbacks(execute=True):
        counts = sweep_stalled_snapshots_task.apply().get()
    assert counts == {"restarted": 1, "requeued": 0, "failed": 1}
    assert sorted(Snapshot.objects.values_list("state", flat=True)) == ["done", "failed"]


# --- claims: a copy of the message, a worker that finishes late ------------------------------


def test_a_copy_of_the_message_does_nothing_while_a_live_worker_computes(register):
    snapshot = Snapshot.objects.create(as_of=dt.date(2024, 12, 31), trigger="request", min_cell=5)
    copies: list[str] = []

    def second_delivery() -> None:
        if not copies:
            copies.append(compute_snapshot_task.apply(args=(snapshot.pk,)).get())

    with mock.patch.object(services, "_pause_for_tests", side_effect=second_delivery):
        assert services.compute_snapshot(snapshot.pk) == "done"
    assert copies == ["running"]
    snapshot.refresh_from_db()
    assert snapshot.state == "done" and snapshot.attempts == 1


def test_a_worker_thought_lost_that_finishes_after_the_restart_writes_nothing(
    register, ngo_a, django_capture_on_commit_callbacks
):
    snapshot = Snapshot.objects.create(as_of=dt.date(2024, 12, 31), trigger="request", min_cell=5)
    restarts: list[services.Sweep] = []

    def stalls_while_another_worker_finishes() -> None:
        if restarts:
            return  # the second worker's own pause
        # The first worker stops beating (a long pause, its machine cut off) ...
        Snapshot.objects.filter(pk=snapshot.pk).update(heartbeat_at=ago(STALL + 5))
        CaseFactory(organisation=ngo_a, reported_on=dt.date(2024, 6, 1))
        # ... the sweep restarts the snapshot and a second worker computes it, with the case added since.
        with django_capture_on_commit_callbacks(execute=True):
            restarts.append(services.sweep_stalled_snapshots())

    with mock.patch.object(services, "_pause_for_tests", side_effect=stalls_while_another_worker_finishes):
        outcome = services.compute_snapshot(snapshot.pk)
    assert restarts[0].restarted == [snapshot.pk]
    assert outcome == "done"  # the snapshot is done: by the second worker
    snapshot.refresh_from_db()
    assert snapshot.attempts == 2 and snapshot.restarted_at is not None
    assert snapshot.source_cases == 7 and snapshot.exact["totals"]["reported"] == 7  # not the first worker's 6


def test_a_failure_releases_the_claim_so_that_a_retry_can_take_it_at_once(register):
    snapshot = Snapshot.objects.create(as_of=dt.date(2024, 12, 31), trigger="request", min_cell=5)
    with (
        mock.patch("reports.services.compute_figures_by_organisation", side_effect=RuntimeError("boom")),
        pytest.raises(RuntimeError),
    ):
        services.compute_snapshot(snapshot.pk)
    snapshot.refresh_from_db()
    assert (snapshot.state, snapshot.claim, snapshot.attempts) == ("queued", "", 1)
    assert services.compute_snapshot(snapshot.pk) == "done"
    snapshot.refresh_from_db()
    assert snapshot.attempts == 2


def test_a_failed_copy_of_the_message_does_not_fail_a_snapshot_a_live_worker_computes(register):
    alive = running(silent_for=1)
    assert services.mark_failed(alive.pk, error="the copy could not reach the database") is False
    silent = running(silent_for=STALL + 5, claim="other")
    assert services.mark_failed(silent.pk, error="gone") is True


def test_a_copy_of_the_message_takes_over_a_silent_snapshot_and_gives_up_after_the_last_attempt(register):
    lost = running(silent_for=STALL + 5, attempts=2)
    assert services.compute_snapshot(lost.pk) == "done"
    lost.refresh_from_db()
    assert lost.attempts == 3
    last = running(silent_for=STALL + 5, attempts=services.MAX_ATTEMPTS, claim="last")
    assert services.compute_snapshot(last.pk) == "failed"


# --- the heartbeat ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_worker_beats_while_it_computes_and_stops_when_its_claim_is_taken(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # a worker: beat may sweep
    settings.SNAPSHOT_HEARTBEAT_SECONDS = 0.05
    snapshot = running(silent_for=60, claim="mine")
    before = snapshot.heartbeat_at
    with services.heartbeat(snapshot_id=snapshot.pk, claim="mine"):
        deadline = time.monotonic() + 10
        while Snapshot.objects.get(pk=snapshot.pk).heartbeat_at == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Snapshot.objects.get(pk=snapshot.pk).heartbeat_at > before
        beating = [t for t in threading.enumerate() if t.name == f"snapshot-{snapshot.pk}-heartbeat"]
        assert len(beating) == 1
        Snapshot.objects.filter(pk=snapshot.pk).update(claim="a-restart")  # the sweep restarted it, a worker took it
        beating[0].join(timeout=5)
        assert not beating[0].is_alive()  # it noticed and stopped
    assert services.beat(snapshot_id=snapshot.pk, claim="mine") is False
    connection.close()


def test_in_process_there_is_no_heartbeat_thread(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    before = threading.active_count()
    with services.heartbeat(snapshot_id=1, claim="x"):
        assert threading.active_count() == before


# --- what the page says -----------------------------------------------------------------------


def _local_time(moment: dt.datetime) -> str:
    return formats.time_format(timezone.localtime(moment), "TIME_FORMAT")


def test_the_page_says_when_a_computation_was_restarted(register, supervisor, django_capture_on_commit_callbacks):
    lost = running(silent_for=STALL + 5)
    sweep_without_running_the_tasks(django_capture_on_commit_callbacks)
    lost.refresh_from_db()
    said = f"The computation stopped (its worker was lost) and was restarted at {_local_time(lost.restarted_at)}."
    client = signed_in(supervisor)
    status = client.get(reverse("figures-snapshot-status", args=[lost.pk])).json()
    assert status["state"] == "queued" and status["restarted_at"] == lost.restarted_at.isoformat()
    assert status["label"] == f"Figures as of 31 Dec 2024: queued, waiting for a worker. {said}"
    page = client.get(reverse("figures")).content.decode()
    assert f'<span class="status-text">Figures as of 31 Dec 2024: queued, waiting for a worker. {said}</span>' in page
    assert f'<span class="muted">{said}</span>' in page  # and in the table of snapshots


def test_the_page_says_when_a_worker_has_gone_silent_before_the_sweep_comes(register, supervisor):
    lost = running(silent_for=STALL + 5)
    label = views.status_text(lost)
    assert label == (
        "Figures as of 31 Dec 2024: being computed. No sign of its worker since "
        f"{_local_time(lost.heartbeat_at)}: the computation will be restarted shortly."
    )
    alive = running(silent_for=5)
    assert views.status_text(alive) == "Figures as of 31 Dec 2024: being computed."


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_on_postgresql_restart_a_snapshot_once(register, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    lost = running(silent_for=STALL + 5)
    barrier = threading.Barrier(4)
    restarted: list[list[int]] = []

    def sweep() -> None:
        try:
            barrier.wait(timeout=10)
            restarted.append(services.sweep_stalled_snapshots().restarted)
        finally:
            connection.close()

    with mock.patch.object(services, "queue_snapshot") as queue:
        threads = [threading.Thread(target=sweep) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert sorted(restarted) == [[], [], [], [lost.pk]]
    queue.assert_called_once_with(lost.pk)
