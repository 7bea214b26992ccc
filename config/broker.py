"""Whether work can be queued (a cheap, cached look at the broker), and queuing a job's task without
ever turning a broker outage into an error page.

The figures page asks on every view, so the answer is remembered for a few
seconds, and a broker that does not answer costs at most half a second.
Nothing here uses Django's cache, which lives in the same Redis. The doors that
start a job (figures, the web import, an answered sheet) ask first and refuse
at once, changing nothing; ``send_after_commit`` covers a broker lost in the
seconds between.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

PING_TIMEOUT_SECONDS = 0.5
REMEMBER_SECONDS = 5.0

_lock = threading.Lock()
_last: tuple[float, bool] | None = None


def queue_available() -> bool:
    """True when tasks run in-process (no Redis) or Redis answers a ping."""
    global _last
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return True
    now = time.monotonic()
    with _lock:
        if _last is not None and now - _last[0] < REMEMBER_SECONDS:
            return _last[1]
    available = _ping(str(settings.CELERY_BROKER_URL))
    with _lock:
        _last = (time.monotonic(), available)
    return available


def forget() -> None:
    """Ask the broker again next time (after a failed publish; in tests)."""
    global _last
    with _lock:
        _last = None


def _ping(url: str) -> bool:
    try:
        client = redis.Redis.from_url(
            url, socket_timeout=PING_TIMEOUT_SECONDS, socket_connect_timeout=PING_TIMEOUT_SECONDS
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        logger.warning("The job queue (Redis) does not answer: jobs cannot be queued.")
        return False


def send_after_commit(task: Any, *args: Any, on_failure: Callable[[], object]) -> bool:
    """Queue ``task(*args)`` once the current transaction commits (at once outside one).

    The message is published once (no retries that would hold the request); if the broker refuses it,
    the failure is logged and ``on_failure`` runs instead (it puts the job back where it was, so that it
    can be started again): the page that started the job shows the job, never an error. False when the
    broker refused it at once (outside a transaction: the caller's page can say so); True when it was
    queued, or will be at the commit. In process (``CELERY_TASK_ALWAYS_EAGER``: the demo, the tests) the
    task runs here, and its own errors propagate.
    """
    refused: list[bool] = []

    def send() -> None:
        try:
            task.apply_async(args=args, retry=False)
        except Exception:
            if settings.CELERY_TASK_ALWAYS_EAGER:
                raise
            logger.exception("Could not queue %s%r", getattr(task, "name", task), args)
            forget()
            on_failure()
            refused.append(True)

    transaction.on_commit(send)
    return not refused
