"""The API's rate limit per token, counted atomically: many requests at once cannot pass it together.

DRF's SimpleRateThrottle reads a token's history from the cache, appends to it
and writes it back, so requests arriving together read the same history and
all pass. Here a request counts itself with one atomic operation and learns
its rank: Redis's INCR when REDIS_URL is set (any number of processes);
without Redis (the demo, the SQLite tests) the local-memory cache's incr,
which runs under the cache's lock: right for one process, which is what those
are.

Redis not answering does not stop the API: the counting goes on in each web process's memory meanwhile
(accounts.rate_counters).

The window slides: what counts is the current window's requests plus the
previous window's, weighted by how much of the previous window is still
within the last ``duration`` seconds. A fixed window would let twice the rate
through across its boundary.
"""

from __future__ import annotations

import math

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from accounts import rate_counters
from accounts.models import ApiToken
from accounts.requests import client_address


class TokenRateThrottle(SimpleRateThrottle):
    """``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["token"]`` per token (per address without one)."""

    scope = "token"

    def __init__(self) -> None:
        super().__init__()
        # What the refusal saw, for Retry-After.
        self._count, self._previous, self._elapsed = 0, 0, 0.0

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        token = request.auth
        if isinstance(token, ApiToken):
            return self.cache_format % {"scope": self.scope, "ident": token.prefix}
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def get_ident(self, request: Request) -> str:
        # DRF's own reads X-Forwarded-For from anyone; the register's address is the one every door uses.
        return client_address(request) or ""

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        limit, duration = self.parse_rate(self.rate)
        if limit is None or duration is None:
            return True
        self.now = self.timer()
        window, position = divmod(self.now, duration)
        current_key, previous_key = f"{key}:{int(window)}", f"{key}:{int(window) - 1}"
        # This window's counter also serves as the previous one during the next window.
        count = rate_counters.increment(current_key, timeout=2 * duration + 5, shared=self.cache)
        previous = rate_counters.value(previous_key, shared=self.cache)
        self._elapsed = position / duration
        self._previous = previous
        if count is not None and previous * (1 - self._elapsed) + count <= limit:
            return True
        # Refused: take the request back out, so that only accepted requests count against the next ones.
        if count is not None:
            rate_counters.take_back(current_key, shared=self.cache)
        self._count = (count or limit + 1) - 1
        return self.throttle_failure()

    def wait(self) -> float | None:
        """Seconds until a request would be accepted (Retry-After), at least one."""
        limit, duration = self.parse_rate(self.rate)
        if limit is None or duration is None:
            return None
        room = limit - self._count - 1  # what fits once the previous window's weight is gone
        if room >= 0:
            # Still this window: the previous window's weight shrinks as the window slides.
            needed = 1 - room / self._previous if self._previous else 0.0
            seconds = (needed - self._elapsed) * duration
        else:
            # This window is full: in the next one, its count becomes the previous, weighted down as it slides.
            needed = 1 - (limit - 1) / self._count if self._count else 0.0
            seconds = (1 - self._elapsed + max(needed, 0.0)) * duration
        return float(max(1, math.ceil(seconds)))
