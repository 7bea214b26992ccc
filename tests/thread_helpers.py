"""Two connections in one test: work in a thread of its own, paused inside its transaction while the test probes."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection, connections, transaction


class Halfway:
    """Runs ``work`` in a thread of its own (its own connection) until it calls ``pause``; the test then probes
    from its connection, and leaving the block lets the work go on to its end, and reports what it raised."""

    def __init__(self, work: Callable[[Callable[[], None]], object]) -> None:
        self._reached, self._go_on = threading.Event(), threading.Event()
        self.failures: list[BaseException] = []

        def run() -> None:
            try:
                work(self.pause)
            except BaseException as error:  # reported on leaving the block
                self.failures.append(error)
            finally:
                connections.close_all()

        self._thread = threading.Thread(target=run)

    def pause(self) -> None:
        if not self._reached.is_set():
            self._reached.set()
            self._go_on.wait(20)

    def __enter__(self) -> Halfway:
        self._thread.start()
        assert self._reached.wait(20), "the work never reached its pause"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._go_on.set()
        self._thread.join(30)
        assert not self._thread.is_alive()
        assert not self.failures, self.failures


def without_waiting(write: Callable[[], object]) -> None:
    """``write`` in a transaction of this connection that gives up on any lock after 3 s (it would wait for
    the other's commit, which waits for the test)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '3s'")
        write()


def locks_the_history(sql: str) -> bool:
    """Whether a captured statement takes (or reads) the status history's chain head."""
    return "casework_auditchainhead" in sql and "'casework_statuschange'" in sql
