"""Shared pieces of the benchmarks."""

from __future__ import annotations

import resource
from dataclasses import dataclass


@dataclass
class Row:
    benchmark: str
    size: str
    figure: str
    target: str = ""
    ok: bool | None = None


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(rows: list[Row]) -> None:
    headers = ("benchmark", "size", "figure", "target", "met")
    cells = [(r.benchmark, r.size, r.figure, r.target, "" if r.ok is None else ("yes" if r.ok else "NO")) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))
