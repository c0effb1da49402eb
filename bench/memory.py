"""Scenario (d): resident memory of each process type, idle after start-up and one handled command.

The processes are started as the Procfile starts them (its default pool shape:
1 worker process x 4 threads), one ``system.noop`` goes through the HTTP API to
``succeeded``, and the RSS is read after a short idle pause. The other pools are
started too and read idle (their commands need remote services or data).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from bench.bus import succeeded
from bench.procinfo import MB, children, process_cpu_seconds, rss_bytes, uss_bytes
from bench.procs import python, running, say, wait_for
from bench.services import fresh
from bench.web import our_web, post_command

IDLE_S = 3.0
POOL_SHAPE = ("--processes", "1", "--threads", "4")
#: pools read idle, with the issue's target where it names one
OTHER_POOLS = (("gooddata", 150), ("metrics", 150), ("pipelines", None), ("forecast", None))


@dataclass
class Rss:
    process: str
    rss_mb: float
    #: memory only this process holds (forked workers share pages with their parent); None without psutil
    uss_mb: float | None
    #: upper bound in MB, or None for a process without a target
    target_mb: float | None = None
    #: CPU used while idle, in % of one core (a busy loop shows here)
    idle_cpu_pct: float = 0.0

    @property
    def met(self) -> bool | None:
        return None if self.target_mb is None else self.rss_mb < self.target_mb


def reading(process: str, pid: int, target_mb: float | None, idle_cpu_s: float) -> Rss:
    uss = uss_bytes(pid)
    return Rss(process, rss_bytes(pid) / MB, None if uss is None else uss / MB, target_mb, 100 * idle_cpu_s / IDLE_S)


def idle_memory(root: Path) -> list[Rss]:
    with fresh(root, "d-memory") as services, our_web(services, "d-web") as (web, base):
        pool = python("-m", "dramatiq", "workers.pools.system", "--queues", "system", *POOL_SHAPE)
        others = [
            (name, target, python("-m", "dramatiq", f"workers.pools.{name}", "--queues", name, *POOL_SHAPE))
            for name, target in OTHER_POOLS
        ]
        with (
            running("d-system-worker", pool, services.env()) as worker,
            running("d-ticker", python("-m", "workers.ticker"), services.env()) as ticker,
            contextlib.ExitStack() as stack,
        ):
            pools = [(n, t, stack.enter_context(running(f"d-{n}-worker", cmd, services.env()))) for n, t, cmd in others]
            post_command(base)
            wait_for(lambda: succeeded(services.database_url) == 1, 30, "the command", watch=[web, worker, ticker])
            wait_for(lambda: all(children(p.pid) for _, _, p in pools), 60, "the other pools to fork their workers")
            time.sleep(5)  # their imports finish after the fork
            processes = [
                ("web (uvicorn)", web.pid, 120),
                ("system pool: dramatiq parent", worker.pid, 150),
                *(
                    (f"system pool: forked worker process {n}", pid, 150)
                    for n, pid in enumerate(children(worker.pid), 1)
                ),
                *((f"{name} pool: forked worker process", children(p.pid)[0], target) for name, target, p in pools),
                ("ticker", ticker.pid, None),
            ]
            before = {pid: process_cpu_seconds(pid) for _, pid, _ in processes}
            time.sleep(IDLE_S)
            readings = [
                reading(name, pid, target, process_cpu_seconds(pid) - before[pid]) for name, pid, target in processes
            ]
    for r in readings:
        say(f"(d) {r.process}: {r.rss_mb:.1f} MB RSS, {r.idle_cpu_pct:.1f} % CPU while idle")
    return readings
