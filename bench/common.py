"""Shared pieces of the benchmarks.

Every figure is printed next to its floor, measured in the same run on the same machine (the sign-in
page under the same server and load, a plain COPY of the same rows, a hand-written single-scan query),
and the ratio of the two: on a shared, loaded machine absolute times move 2-3x between runs, while a
ratio to a floor measured beside it holds. Targets are stated on the ratio where the issue gives one.
"""

from __future__ import annotations

import resource
import statistics
from dataclasses import dataclass


@dataclass
class Row:
    benchmark: str
    size: str
    figure: str
    target: str = ""
    ok: bool | None = None
    floor: str = ""  # the floor's figure, measured in the same run, and what it is
    ratio: str = ""  # figure / floor (or floor / figure for throughput), as the target reads it


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MB: its own address space's high-water mark (VmHWM).

    Not ``getrusage``'s ru_maxrss where /proc is there: Linux keeps that figure across exec, so a step run
    in a child process started by a large benchmark process reported its parent's peak (the import's
    children said 198 MB at every size after the figures had run in the parent)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ratio(value: float, floor: float) -> str:
    """``value / floor`` printed as a ratio (``-`` when the floor is zero)."""
    return f"{value / floor:.2f}x" if floor > 0 else "-"


def paired_ratio(values: list[float], floors: list[float]) -> float:
    """The median of ``value / floor`` over runs made in pairs, one right after the other.

    Each pair sees about the same load, so its ratio cancels the load's slow drift; the median
    leaves out the pairs in which a burst hit one of the two and not the other.
    """
    return statistics.median(value / floor for value, floor in zip(values, floors, strict=True) if floor > 0)


def print_table(rows: list[Row]) -> None:
    headers = ("benchmark", "size", "figure", "floor (same run)", "ratio", "target", "met")
    cells = [
        (r.benchmark, r.size, r.figure, r.floor, r.ratio, r.target, "" if r.ok is None else ("yes" if r.ok else "NO"))
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))
