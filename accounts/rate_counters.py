"""The counters of the rate limits (the API's per token, password resets): in the shared cache, or, while it
does not answer, in this process's memory.

The shared cache is Redis in production. Were its errors to reach the doors, a Redis outage would make every
API request and every password reset an error page. Here they are caught: the counting goes on in a
local-memory cache of this process (so each web process lets the limit through, not more), a warning is
logged once a minute, and the shared cache is asked again at the next request.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from django.core.cache import BaseCache, cache
from django.core.cache.backends.locmem import LocMemCache

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What the shared cache raises when it does not answer (RedisCache: redis-py's errors; a socket's).
UNAVAILABLE = (redis.RedisError, OSError)
WARN_EVERY_SECONDS = 60.0

_local = LocMemCache("rate-counters-while-the-cache-is-down", {"OPTIONS": {"MAX_ENTRIES": 100_000}})
_last_warning = 0.0


def _warn(error: BaseException) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARN_EVERY_SECONDS:
        _last_warning = now
        logger.warning(
            "The cache (Redis) does not answer (%s): rate limits are counted in each process meanwhile.",
            type(error).__name__,
        )


def _either(shared: BaseCache, operation: Callable[[BaseCache], T]) -> T:
    try:
        return operation(shared)
    except UNAVAILABLE as error:
        _warn(error)
        return operation(_local)


def increment(key: str, *, timeout: int, shared: BaseCache | None = None) -> int | None:
    """One more on the counter ``key``, created with its expiry; the new value (None if never kept)."""

    def count(store: BaseCache) -> int | None:
        for _attempt in range(3):
            store.add(key, 0, timeout)  # a new window's counter; nothing if it exists
            try:
                return int(store.incr(key))
            except ValueError:  # it expired between the two calls: create it again
                continue
        return None

    return _either(shared or cache, count)


def value(key: str, *, shared: BaseCache | None = None) -> int:
    return _either(shared or cache, lambda store: int(store.get(key, 0)))


def take_back(key: str, *, shared: BaseCache | None = None) -> None:
    """One less on ``key`` (a refused request does not count); nothing if it expired meanwhile."""

    def decrement(store: BaseCache) -> None:
        with contextlib.suppress(ValueError):
            store.decr(key)

    _either(shared or cache, decrement)


def clear_local() -> None:
    """Forget the counts kept while the cache was down (tests)."""
    _local.clear()
