"""The drain series of ``python -m bench``: which worker drains a full queue, and in what order.

Every series runs once per repeat, all of them in turn (raw Dramatiq, ours, the peers,
the scale cases), so a disturbance of the machine in one part of the run does not hit one
side only. A part chosen with ``--only`` brings the baselines its ratios need.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench import bus, peer_celery, peer_procrastinate, scale
from bench.bus import WORKER_SHAPE, Drain
from bench.procs import BenchError, say

#: the scale case's bigger pool: twice the processes of WORKER_SHAPE
BIG_SHAPE = ("--processes", "4", "--threads", "8")


@dataclass(frozen=True)
class Series:
    #: as RESULTS.md names it
    label: str
    #: (root, messages, run) -> the run's figures
    measure: Callable[[Path, int, int], Drain]
    #: a peer: drains ``--peer-messages`` (it is slower: the same count would take most of the run)
    peer: bool = False


def catalogue(plans: list[scale.Plan]) -> dict[str, Series]:
    """Every series, in the order a repeat runs them; the scale case's query plans go to ``plans``."""
    small, big = bus.shape_text(WORKER_SHAPE), bus.shape_text(BIG_SHAPE)
    return {
        "raw": Series(f"(a) raw Dramatiq, {small}", bus.raw_dramatiq),
        "ours": Series(f"(b) Switchyard, {small}", bus.our_stack),
        "procrastinate": Series(
            f"(p) procrastinate, 1 process, concurrency {peer_procrastinate.CONCURRENCY}",
            peer_procrastinate.procrastinate_drain,
            peer=True,
        ),
        "celery": Series(
            f"(q) Celery, {peer_celery.WORKERS} prefork workers x {peer_celery.CONCURRENCY}",
            peer_celery.celery_drain,
            peer=True,
        ),
        "raw-big": Series(f"(a) raw Dramatiq, {big}", partial(bus.raw_dramatiq, shape=BIG_SHAPE)),
        "ours-big": Series(f"(s) Switchyard, {big}", partial(bus.our_stack, shape=BIG_SHAPE)),
        "ours-filled": Series(
            f"(s) Switchyard, {small}, {scale.FILLED_ROWS:,} rows in jobs",
            partial(scale.filled_drain, plans=plans),
        ),
    }


#: the series each part of the run needs: its own and the baselines of its ratios
NEEDS = {
    "bus": ("raw", "ours"),
    "peers": ("ours", "procrastinate", "celery"),
    "scale": ("raw", "ours", "raw-big", "ours-big", "ours-filled"),
}


def wanted(parts: list[str], series: dict[str, Series]) -> list[str]:
    needed = {key for part in parts for key in NEEDS.get(part, ())}
    return [key for key in series if key in needed]


def run_all(
    series: dict[str, Series],
    keys: list[str],
    root: Path,
    counts: tuple[int, int],
    repeat: int,
    runs: dict[str, list[Drain]],
    errors: dict[str, str],
) -> None:
    """``repeat`` rounds of every series in ``keys``; a series that fails is reported in ``errors``
    and left out of the later rounds, and the others go on. ``counts``: messages of ours and Dramatiq's
    runs, of the peers'."""
    for run in range(1, repeat + 1):
        for key in keys:
            label = series[key].label
            if label in errors:
                continue
            messages = counts[1] if series[key].peer else counts[0]
            say(f"{label}, run {run}: {messages} messages")
            try:
                drain = series[key].measure(root, messages, run)
            except BenchError as err:
                errors[label] = f"run {run}: {err}"
                say(f"{label} failed: {err}")
                continue
            except Exception:  # noqa: BLE001 - one failed series must still leave the others' figures
                errors[label] = f"run {run}: {traceback.format_exc()}"
                say(f"{label} failed: {errors[label].strip().splitlines()[-1]}")
                continue
            runs.setdefault(key, []).append(drain)
            say(f"{label}: {drain.rate:,.0f} messages/s")
