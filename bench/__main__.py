"""`make bench`: run every benchmark in bench/ and print one table of figures.

Benchmarks run on the database in DATABASE_URL (the Makefile points it at a
local PostgreSQL database ``repatriation_bench``, created if missing). Each
module ``bench/bench_*.py`` has ``run() -> list[Row]``; ``BENCH_ONLY=name``
runs only the modules whose name contains ``name``.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time

import django


def _ensure_database() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    _ensure_database()
    django.setup()
    from django.core.management import call_command

    from bench.common import Row, print_table

    call_command("migrate", verbosity=0, interactive=False)
    only = os.environ.get("BENCH_ONLY", "")
    rows: list[Row] = []
    started = time.perf_counter()
    import bench

    for module_info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if not module_info.name.startswith("bench_") or only not in module_info.name:
            continue
        module = importlib.import_module(f"bench.{module_info.name}")
        print(f"-- {module_info.name}", file=sys.stderr, flush=True)
        try:
            rows.extend(module.run())
        except Exception as error:  # one broken benchmark must not hide the others' figures
            rows.append(Row(module_info.name, "-", f"FAILED: {type(error).__name__}: {str(error)[:120]}", ok=False))
    print_table(rows)
    print(f"\n(total {time.perf_counter() - started:.1f} s on {django.db.connection.vendor})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
