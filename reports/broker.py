"""Whether new snapshots can be queued: a cheap, cached look at the broker.

The figures page asks on every view, so the answer is remembered for a few
seconds, and a broker that does not answer costs at most half a second.
Nothing here uses Django's cache, which lives in the same Redis.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from django.conf import settings

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
        logger.warning("The job queue (Redis) does not answer: new figures snapshots are unavailable.")
        return False
