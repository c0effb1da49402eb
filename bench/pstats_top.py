"""The functions costing the most in a cProfile statistics file, per unit of work (a job, a request)."""

from __future__ import annotations

import pstats
import shutil
from pathlib import Path

from bench.procs import wait_for


def show_profile(path: Path, count: int, top: int, unit: str, save: Path | None = None) -> None:
    """Once the profiled process has written ``path``: its ``print_top``, and a copy at ``save``."""
    wait_for(path.exists, 30, f"the profile at {path.name}")
    print_top(path, count, top, unit)
    if save:
        shutil.copyfile(path, save)


def print_top(path: Path, count: int, top: int, unit: str) -> None:
    """Own time and cumulative time of the ``top`` costliest functions, in ms and calls per ``unit``
    (``count`` of them were done)."""
    stats = pstats.Stats(str(path))
    rows = []
    for (file, line, name), (_calls, ncalls, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(file).parent.name}/{Path(file).name}:{line}" if line else file
        rows.append((own, cumulative, ncalls, f"{where}({name})"))
    total = sum(r[0] for r in rows)
    calls = sum(r[2] for r in rows)
    print(f"profiled time: {total:.2f} s = {1000 * total / count:.3f} ms/{unit} (profiler overhead included)")
    print(f"function calls: {calls / count:.0f} per {unit}")
    for title, key in (("own time", 0), ("cumulative", 1)):
        print(f"\ntop {top} by {title} (ms/{unit}, calls/{unit})")
        for row in sorted(rows, key=lambda r: r[key], reverse=True)[:top]:
            print(f"  {1000 * row[key] / count:8.4f}  {row[2] / count:6.2f}  {row[3]}")
