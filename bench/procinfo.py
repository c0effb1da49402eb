"""Memory and CPU time of process trees: psutil when it is installed, ``/proc`` otherwise."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

try:
    import psutil
except ImportError:  # psutil comes with the `local` extra; the figures do not depend on it
    psutil = None  # type: ignore[assignment]

_TICK = os.sysconf("SC_CLK_TCK")
MB = 1_000_000
#: what reading a process that has just exited raises
GONE: tuple[type[Exception], ...] = (OSError, ValueError) if psutil is None else (OSError, psutil.Error)


def _stat_fields(pid: int) -> list[str]:
    # the command name (2nd field) may hold spaces: split after its closing parenthesis
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` alive now."""
    if psutil is not None:
        try:
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat_fields(int(entry.name))[1])
            except (OSError, ValueError):
                continue  # exited while we looked
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def rss_bytes(pid: int) -> int:
    if psutil is not None:
        return psutil.Process(pid).memory_info().rss
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ProcessLookupError(pid)


def uss_bytes(pid: int) -> int | None:
    """Memory only this process holds (what its exit would free); None without psutil."""
    if psutil is None:
        return None
    return psutil.Process(pid).memory_full_info().uss


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of this one process (0 once it has exited)."""
    try:
        if psutil is not None:
            times = psutil.Process(pid).cpu_times()
            return times.user + times.system
        fields = _stat_fields(pid)
        return (int(fields[11]) + int(fields[12])) / _TICK
    except GONE:
        return 0.0  # exited in between: its time is lost, a Postgres backend at most


def cpu_seconds(root_pids: list[int]) -> float:
    """User + system CPU seconds used so far by ``root_pids`` and all their descendants."""
    pids = {p for root in root_pids for p in (root, *children(root))}
    return sum(process_cpu_seconds(p) for p in pids)


def machine_seconds() -> tuple[float, float, float]:
    """(process, interrupt, steal) CPU seconds of the whole machine so far, summed over cores (/proc/stat).

    Process time (user, nice, system) is what the per-process figures add up to. The
    kernel's interrupt time (irq, softirq) is charged to no process; under load it is
    mostly the run's own loopback traffic. Steal is time a virtual machine's cores
    waited for the host: a run with much of it was slowed by a neighbour we cannot see.
    """
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
    )
    return (user + nice + system) / _TICK, (irq + softirq) / _TICK, steal / _TICK


class CpuMeter:
    """CPU seconds each group of processes used over a window, and what the rest of the machine used.

    The machine has 2 cores: a figure only means something next to what else was
    running, so every timed window reports where its CPU went.
    """

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.seconds = 0.0
        self.used: dict[str, float] = {}
        self._start: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        own = os.times()
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        processes, interrupts, steal = machine_seconds()
        return {
            **{name: cpu_seconds(pids) for name, pids in self.groups.items()},
            "bench (this process)": own.user + own.system,
            # children that ended inside the window: wrk
            "reaped children": reaped.ru_utime + reaped.ru_stime,
            "_machine": processes,
            "_interrupts": interrupts,
            "_steal": steal,
            "_clock": time.perf_counter(),
        }

    def start(self) -> CpuMeter:
        self._start = self._sample()
        return self

    def stop(self) -> dict[str, float]:
        end = self._sample()
        delta = {name: end[name] - self._start[name] for name in end}
        self.seconds = delta.pop("_clock")
        machine = delta.pop("_machine")
        interrupts = delta.pop("_interrupts")
        steal = delta.pop("_steal")
        if delta["reaped children"] < 0.005:
            del delta["reaped children"]
        delta["other processes"] = max(0.0, machine - sum(delta.values()))
        delta["kernel interrupts (mostly loopback traffic)"] = interrupts
        delta["stolen by the hypervisor"] = steal
        self.used = delta
        return delta

    def summary(self) -> str:
        """``"12.0 s window, 24.0 CPU-s on 2 cores: workers 15.1, postgres 3.2, ..."``."""
        cores = len(os.sched_getaffinity(0))
        parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.used.items())
        return f"{self.seconds:.1f} s window = {self.seconds * cores:.1f} CPU-s on {cores} cores; used: {parts}"


def busy_cores(seconds: float = 1.0) -> float:
    """How many cores the whole machine kept busy over the next ``seconds``."""
    before = machine_seconds()
    time.sleep(seconds)
    after = machine_seconds()
    # process and interrupt time: what runs here; steal happens on the host
    return (after[0] + after[1] - before[0] - before[1]) / seconds


def wait_for_quiet(limit_s: float, threshold: float = 0.3) -> tuple[float, float]:
    """Wait (at most ``limit_s``) until other processes use less than ``threshold`` cores.

    On a shared 2-core machine another job's load would distort a figure far more
    than the scenario's own noise. Returns (seconds waited, busy cores last seen).
    """
    busy = busy_cores()
    began = time.perf_counter()
    while busy >= threshold and time.perf_counter() - began < limit_s:
        busy = busy_cores(2.0)
    return time.perf_counter() - began, busy
