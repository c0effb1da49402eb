"""What one ``python -m bench`` run measured, and the small helpers its report is written with."""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field
from typing import Any

from bench.bus import Drain
from bench.memory import Rss
from bench.scale import Plan
from bench.web import WebResult

BUS_RATIO_TARGET = 0.6
HTTP_RATIO_TARGET = 0.5
P99_TARGET_MS = 50.0
TICKER_P99_TARGET_S = 1.0
#: ours on a million rows against ours on an empty table
FILLED_RATIO_TARGET = 0.9


@dataclass
class Results:
    started: dt.datetime
    machine: str
    software: str
    load_before: str
    messages: int
    seconds: int
    repeat: int
    peer_messages: int = 0
    ticker_minutes: float = 0.0
    #: bench.machine.costs_line, measured before the scenarios
    costs: str = ""
    #: series (bench.drains) -> every run of it; the fastest is the figure
    drains: dict[str, list[Drain]] = field(default_factory=dict)
    #: the job queries explained on the million-row table
    plans: list[Plan] = field(default_factory=list)
    web: WebResult | None = None
    memory: list[Rss] | None = None
    #: bench.ticker.run's figures
    ticker: dict[str, Any] | None = None
    #: scenario or series -> why it produced no figures
    errors: dict[str, str] = field(default_factory=dict)
    #: scenario -> how busy the machine was just before it
    quiet: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def best(self, key: str) -> Drain | None:
        return fastest(self.drains.get(key, []))

    def ratio(self, key: str, baseline: str) -> Ratio | None:
        """Fastest over fastest, and the ratio of each repeat's pair (a repeat runs them one after the other)."""
        mine, theirs = self.best(key), self.best(baseline)
        if mine is None or theirs is None:
            return None
        pairs = zip(self.drains[key], self.drains[baseline], strict=False)
        return Ratio(mine.rate / theirs.rate, [a.rate / b.rate for a, b in pairs])


@dataclass
class Ratio:
    value: float
    #: one per repeat
    runs: list[float]


def fastest(runs: list[Drain]) -> Drain | None:
    """Another process can only slow a run down: the fastest is the least disturbed."""
    return max(runs, key=lambda d: d.rate, default=None)


def met(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "**not met**")


def row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def spread(values: list[float], fmt: str = ",.0f") -> str:
    """min / median / max of a figure measured more than once; empty for one run."""
    if len(values) < 2:
        return ""
    return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def http_ratios(web: WebResult) -> tuple[float, float]:
    """(pool stopped, pool running) requests/s over the hello-world app's."""
    return web.ours_pool_stopped.rps / web.hello.rps, web.ours.rps / web.hello.rps


def accepted_ratio(r: Results) -> Ratio | None:
    """The ingress's insert path on a million rows over the same on the empty table, each run's pair
    measured on the same servers one after the other (``scale.accept_rate``)."""
    pairs = [d.accepted for d in r.drains.get("ours-filled", []) if d.accepted is not None]
    if not pairs:
        return None
    return Ratio(max(f for _, f in pairs) / max(e for e, _ in pairs), [f / e for e, f in pairs])


def filled_ratio(r: Results) -> Ratio | None:
    """Publish + drain throughput on a million rows over the same on an empty table."""
    filled, empty = r.drains.get("ours-filled", []), r.drains.get("ours", [])
    if not filled or not empty:
        return None
    best = max(d.end_to_end_rate for d in filled) / max(d.end_to_end_rate for d in empty)
    pairs = zip(filled, empty, strict=False)
    return Ratio(best, [a.end_to_end_rate / b.end_to_end_rate for a, b in pairs])
