"""The per-token rate limit holds when many requests arrive at once, with Redis (CI) and without it (the demo).

Requests are fired from many threads at once, directly at the throttle and through a
live server; no more than the limit may pass. The clock is held in the middle of a
window so that a run never straddles two windows.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.test.utils import override_settings
from django.utils import timezone
from rest_framework.test import APIRequestFactory

from accounts import rate_counters
from accounts.models import ApiToken, Organisation
from partners.api.throttling import TokenRateThrottle
from tests.api_helpers import make_token

REDIS_URL = os.environ.get("REDIS_URL", "")
# 60 s windows: this instant is 30 s into one.
MIDDLE_OF_A_WINDOW = 1_800_000_030.0


def locmem_cache() -> dict[str, dict[str, str]]:
    return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": uuid.uuid4().hex}}


def redis_cache() -> dict[str, dict[str, str]]:
    # A prefix of its own: nothing else in the Redis database is read or removed; the keys expire by themselves.
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"throttle-test-{uuid.uuid4().hex}",
        }
    }


CACHES = [
    pytest.param(locmem_cache, id="local-memory"),
    pytest.param(
        redis_cache,
        id="redis",
        marks=pytest.mark.skipif(not REDIS_URL, reason="needs Redis: set REDIS_URL (CI does)"),
    ),
]


@pytest.fixture(scope="module")
def live_server(request):
    """pytest-django's live server, plain HTTP: its middleware is built when it starts, before a per-test override."""
    from pytest_django.live_server_helper import LiveServer

    with override_settings(SECURE_SSL_REDIRECT=False):
        server = LiveServer("localhost")
    yield server
    server.stop()


@pytest.fixture
def rate(monkeypatch):
    def set_rate(value: str) -> None:
        monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": value})

    monkeypatch.setattr(TokenRateThrottle, "timer", staticmethod(lambda: MIDDLE_OF_A_WINDOW))
    return set_rate


def fire(attempt, *, threads: int, each: int) -> list:
    """``threads`` threads, released together, each calling ``attempt`` ``each`` times.

    Python switches threads every few milliseconds; switching as often as it can makes a
    read-then-write of the cache interleave, as it does across processes and machines.
    """
    start = threading.Barrier(threads)

    def run() -> list:
        start.wait()
        return [attempt() for _ in range(each)]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            futures = [pool.submit(run) for _ in range(threads)]
            return [result for future in futures for result in future.result()]
    finally:
        sys.setswitchinterval(interval)


@pytest.mark.parametrize("caches", CACHES)
def test_the_throttle_lets_through_no_more_than_the_limit_when_hit_at_once(settings, rate, caches):
    settings.CACHES = caches()
    rate("50/minute")
    view = object()
    # In one process a race shows in most rounds, not every one; through Redis in every one.
    for _round in range(3 if caches is locmem_cache else 1):
        token = ApiToken(prefix=uuid.uuid4().hex[:12])

        def attempt(token: ApiToken = token) -> bool:
            request = APIRequestFactory().get("/api/v1/intermediaries/")
            request.auth = token
            return TokenRateThrottle().allow_request(request, view)

        results = fire(attempt, threads=64, each=10)
        assert Counter(results) == {True: 50, False: 590}
    # Another token has its own count.
    other = ApiToken(prefix=uuid.uuid4().hex[:12])
    request = APIRequestFactory().get("/api/v1/intermediaries/")
    request.auth = other
    assert TokenRateThrottle().allow_request(request, view)


@pytest.mark.parametrize("caches", CACHES)
def test_the_limit_holds_for_parallel_requests_to_a_live_server(live_server, settings, rate, caches):
    settings.CACHES = caches()
    rate("20/minute")
    partner = Organisation.objects.get(slug="qatar")
    # Used just now: reading the token writes nothing, so the requests only read the database.
    _token, plain = make_token(partner, last_used_at=timezone.now())
    url = f"{live_server.url}/api/v1/intermediaries/"

    def attempt() -> tuple[int, str | None, dict]:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {plain}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers.get("Retry-After"), {}
        except urllib.error.HTTPError as refused:
            return refused.code, refused.headers.get("Retry-After"), json.loads(refused.read())

    results = fire(attempt, threads=16, each=5)
    statuses = Counter(status for status, _retry, _body in results)
    assert statuses == {200: 20, 429: 60}
    for status, retry_after, body in results:
        if status == 429:
            assert retry_after is not None and int(retry_after) >= 1
            assert body["error"]["status"] == 429 and body["error"]["code"] == "throttled"


def test_the_window_slides(settings, monkeypatch):
    """Right after a full window, the previous one still counts; it weighs less as the window slides."""
    settings.CACHES = locmem_cache()
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "10/minute"})
    now = [1_800_000_000.0 + 59]  # the last second of a window
    monkeypatch.setattr(TokenRateThrottle, "timer", staticmethod(lambda: now[0]))
    token = ApiToken(prefix=uuid.uuid4().hex[:12])

    def attempt() -> bool:
        request = APIRequestFactory().get("/api/v1/intermediaries/")
        request.auth = token
        throttle = TokenRateThrottle()
        allowed = throttle.allow_request(request, object())
        attempt.wait = throttle.wait()  # type: ignore[attr-defined]
        return allowed

    assert [attempt() for _ in range(11)] == [True] * 10 + [False]
    assert attempt.wait >= 1  # type: ignore[attr-defined]
    now[0] += 2  # one second into the next window: a fixed window would let ten more through
    assert attempt() is False
    now[0] += 29  # half of the previous window's count still weighs: five fit
    assert [attempt() for _ in range(6)] == [True] * 5 + [False]


def dead_redis_cache() -> dict[str, dict[str, Any]]:
    """Redis where nothing listens: every call of the cache fails."""
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }


@pytest.mark.django_db
def test_redis_down_the_api_still_answers_and_the_limit_still_holds(client, settings, rate, caplog):
    """Counted in this process meanwhile: each process lets the limit through, never an error page."""
    settings.CACHES = dead_redis_cache()
    rate_counters.clear_local()
    rate("3/minute")
    partner = Organisation.objects.get(slug="qatar")
    _token, plain = make_token(partner, last_used_at=timezone.now())
    with caplog.at_level(logging.WARNING, logger="accounts.rate_counters"):
        statuses = [
            client.get("/api/v1/intermediaries/", HTTP_AUTHORIZATION=f"Bearer {plain}", secure=True).status_code
            for _ in range(5)
        ]
    assert statuses == [200, 200, 200, 429, 429]
    warnings = [record for record in caplog.records if "does not answer" in record.getMessage()]
    assert len(warnings) <= 1  # once a minute, not once a request
    rate_counters.clear_local()
