"""The pages and the API under load (issue 16), each beside its floor: the sign-in page, same server, same load.

gunicorn (4 workers of 2 threads, as the Procfile runs them; production settings: DEBUG off, the hashed
static files of collectstatic) serves 127.0.0.1 only; ``wrk`` (Debian package) sends 8 connections at one
URL at a time. Measured in rounds, each
round the floor first and then every page, so that whatever else runs on the machine weighs on the floor as
on the pages; a page's figure adds up its rounds, and so does the floor's.

- the sign-in page (the floor): a template and its CSRF token, no query;
- the case list of a caseworker of ``bench-large`` (1,000,000 cases): located cases in Donetsk oblast,
  latest change first, as bench_case_list asks in-process;
- a case page of the same caseworker (a case with its status history);
- the partner API's case list, a page of 100 (``bench-partner``'s 100,000 shared cases, bench_api's data).

Targets (issue 16): each serves at least a third of the floor's requests per second, with a p99 at most
three times the floor's. A page answering anything but 200 (a redirect to the sign-in page, an error) stops
its figure: ``wrk`` counts a redirect as a success.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import override_settings

from bench.common import Row, ratio

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = int(os.environ.get("BENCH_LOAD_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_LOAD_SECONDS", "8"))
CONNECTIONS = 8
WORKERS = int(os.environ.get("BENCH_LOAD_WORKERS", "4"))
THREADS = int(os.environ.get("BENCH_LOAD_THREADS", "2"))
MIN_THROUGHPUT = 1 / 3
MAX_P99 = 3.0

# wrk's own summary: requests, seconds, errors and percentiles in microseconds, one per line.
_REPORT = """
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("BENCH requests %d\\n", summary.requests))
  io.write(string.format("BENCH duration_us %d\\n", summary.duration))
  io.write(string.format("BENCH non2xx %d\\n", errors.status))
  io.write(string.format("BENCH socket_errors %d\\n", errors.connect + errors.read + errors.write + errors.timeout))
  for _, p in pairs({50, 99}) do
    io.write(string.format("BENCH p%d_us %d\\n", p, latency:percentile(p)))
  end
end
"""


@dataclass
class Target:
    label: str
    path: str
    headers: dict[str, str]
    expect: str  # a string the answer must hold: the right page, not a sign-in form
    requests: int = 0
    seconds: float = 0.0
    non2xx: int = 0
    errors: int = 0
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def p99(self) -> float:
        # The rounds' p99s, averaged: one slow round (the machine's neighbours) weighs as one of ROUNDS.
        return sum(self.p99_ms) / len(self.p99_ms) if self.p99_ms else 0.0

    def describe(self) -> str:
        extra = f", non-2xx {self.non2xx}" if self.non2xx else ""
        extra += f", socket errors {self.errors}" if self.errors else ""
        return f"{self.rps:.0f} req/s, p99 {self.p99:.1f} ms{extra}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _session_cookie() -> tuple[str, str]:
    """A signed-in caseworker of bench-large, as the sign-in would leave them (no second factor asked)."""
    from bench.bench_case_list import _caseworker

    client = Client()
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        client.force_login(_caseworker())
    return settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value


def _case_reference() -> str:
    """A case of bench-large with a status history, as a caseworker opens one from the filtered list."""
    from casework.models import Case

    case = (
        Case.objects.filter(organisation__slug="bench-large", status="located", oblast="UA-14")
        .order_by("-last_change_at", "-id")
        .only("reference")
        .first()
    )
    if case is None:
        raise RuntimeError("no located case in Donetsk oblast in bench-large")
    return case.reference


def _collectstatic(static_root: str) -> None:
    # Production serves the manifest of hashed files that collectstatic builds (CompressedManifest...).
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_DEBUG": "0", "DJANGO_STATIC_ROOT": static_root},
        check=True,
    )


def _server_env(static_root: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_STATIC_ROOT": static_root,
        # The API's rate limit would answer 429 to a load test: raised, nothing else changed.
        "API_THROTTLE_RATE": "100000000/minute",
        "REDIS_URL": "",
    }


def _check(base: str, target: Target) -> None:
    request = urllib.request.Request(base + target.path, headers=target.headers)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with opener.open(request, timeout=30) as response:
        body = response.read().decode()
        if response.status != 200 or target.expect not in body:
            raise RuntimeError(f"{target.path} answered {response.status} without {target.expect!r}")


def _wrk(base: str, target: Target, script: str, seconds: int) -> None:
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "-s", script]
    for name, value in target.headers.items():
        command += ["-H", f"{name}: {value}"]
    result = subprocess.run(
        [*command, base + target.path], capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    values = {key: int(value) for key, value in re.findall(r"^BENCH (\w+) (\d+)$", result.stdout, re.MULTILINE)}
    target.requests += values["requests"]
    target.seconds += values["duration_us"] / 1e6
    target.non2xx += values["non2xx"]
    target.errors += values["socket_errors"]
    target.p50_ms.append(values["p50_us"] / 1000)
    target.p99_ms.append(values["p99_us"] / 1000)


def _targets(cookie: tuple[str, str], reference: str, token: str | None) -> list[Target]:
    session = {"Cookie": f"{cookie[0]}={cookie[1]}"}
    targets = [
        Target("sign-in page (floor)", "/accounts/login/", {}, 'name="password"'),
        Target(
            "case list page: status+oblast, by last change",
            "/cases/?status=located&oblast=UA-14&sort=-changed",
            session,
            reference,
        ),
        Target("case page", f"/cases/{reference}/", session, reference),
    ]
    if token is not None:
        targets.append(
            Target(
                "API case list, page of 100",
                "/api/v1/cases/?page_size=100",
                {"Authorization": f"Bearer {token}"},
                '"next"',
            )
        )
    return targets


def run() -> list[Row]:
    if connection.vendor != "postgresql":
        return [Row("pages under load", "-", "skipped: needs PostgreSQL (DATABASE_URL)")]
    if not shutil.which("wrk"):
        return [Row("pages under load", "-", "skipped: wrk is not installed (apt-get install wrk)")]
    from bench import bench_api, bench_case_list

    try:
        total = bench_case_list._ensure_cases()
    except Exception as error:
        return [Row("pages under load", "-", f"skipped: could not generate the cases ({error})")]
    prepared = bench_api._prepare()
    token = prepared[0] if prepared else None
    size = f"{total:,} cases"
    targets = _targets(_session_cookie(), _case_reference(), token)

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-static-") as static_root:
        _collectstatic(static_root)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script_file:
            script_file.write(_REPORT)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "-w",
                str(WORKERS),
                "--threads",
                str(THREADS),
                "-b",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=_server_env(static_root),
            stdout=subprocess.DEVNULL,
            stderr=sys.stderr,
        )
        try:
            for _ in range(150):
                try:
                    urllib.request.urlopen(base + "/accounts/login/", timeout=2)
                    break
                except Exception:
                    time.sleep(0.2)
            for target in targets:
                _check(base, target)
                _wrk(base, target, script_file.name, 2)  # warm up: the workers' caches and connections
                target.requests, target.seconds, target.p50_ms, target.p99_ms = 0, 0.0, [], []
            for round_number in range(ROUNDS):
                print(f"   round {round_number + 1} of {ROUNDS}", file=sys.stderr, flush=True)
                for target in targets:
                    _wrk(base, target, script_file.name, SECONDS)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            Path(script_file.name).unlink(missing_ok=True)

    floor, pages = targets[0], targets[1:]
    threads = f" --threads {THREADS}" if THREADS > 1 else ""
    load = f"gunicorn -w {WORKERS}{threads}, wrk {CONNECTIONS} conns, {ROUNDS}x{SECONDS} s"
    rows = [Row(floor.label, load, floor.describe())]
    for page in pages:
        throughput = page.rps / floor.rps if floor.rps else 0.0
        latency = page.p99 / floor.p99 if floor.p99 else float("inf")
        clean = page.non2xx == 0 and page.errors == 0
        rows.append(
            Row(
                f"{page.label}: throughput",
                size,
                f"{page.rps:.0f} req/s" + ("" if clean else f" ({page.non2xx} non-2xx, {page.errors} errors)"),
                "≥ 0.33x the floor",
                clean and throughput >= MIN_THROUGHPUT,
                floor=f"{floor.rps:.0f} req/s, sign-in page",
                ratio=ratio(page.rps, floor.rps),
            )
        )
        rows.append(
            Row(
                f"{page.label}: p99",
                size,
                f"{page.p99:.1f} ms",
                "≤ 3x the floor",
                clean and latency <= MAX_P99,
                floor=f"{floor.p99:.1f} ms, sign-in page",
                ratio=ratio(page.p99, floor.p99),
            )
        )
    return rows
