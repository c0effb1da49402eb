"""What the figures were measured on: hardware, OS, servers and the libraries that matter."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import statistics
import subprocess
import threading
import time
import timeit
from collections.abc import Callable
from pathlib import Path

LIBRARIES = ("dramatiq", "redis", "psycopg", "starlette", "uvicorn", "msgspec")


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    match = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.MULTILINE)
    return match[1].strip() if match else platform.processor() or "unknown CPU"


def cores() -> int:
    """What ``nproc`` prints: the cores this process may run on."""
    return len(os.sched_getaffinity(0))


def ram_gib() -> float:
    match = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.MULTILINE)
    return int(match[1]) / 1024**2 if match else 0.0


def os_name() -> str:
    match = re.search(r'^PRETTY_NAME="?([^"\n]+)"?$', _read("/etc/os-release"), re.MULTILINE)
    return f"{match[1] if match else platform.system()}, kernel {platform.release()}"


def wrk_version() -> str:
    if shutil.which("wrk") is None:
        return "not installed"
    # `wrk -v` prints its version line and exits 1
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).splitlines()[:1]
    return first[0].split(" [")[0].removeprefix("wrk ") if first else "unknown"


def uvicorn_stack() -> str:
    """uvicorn's ``auto`` picks uvloop and httptools only when they are installed."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{loop} + {http}"


def machine_line(servers: dict[str, str]) -> str:
    parts = [
        cpu_model(),
        f"{cores()} cores (nproc)",
        f"{ram_gib():.1f} GiB RAM",
        os_name(),
        f"Python {platform.python_version()}",
        *(f"{name} {version}" for name, version in sorted(servers.items())),
    ]
    return "; ".join(parts)


def software_line() -> str:
    versions = [f"{name} {importlib.metadata.version(name)}" for name in LIBRARIES]
    return "; ".join([*versions, f"uvicorn event loop + HTTP parser: {uvicorn_stack()}", f"wrk {wrk_version()}"])


def _best_ns(step: Callable[[], object], calls: int, rounds: int = 5) -> float:
    """Nanoseconds per call of ``step``: the best of ``rounds`` timed loops (the least disturbed)."""
    # with the garbage collector on, as in the processes measured (timeit turns it off by default)
    return min(timeit.repeat(step, "import gc; gc.enable()", number=calls, repeat=rounds)) / calls * 1e9


def _python_step() -> object:
    # a little of what the request and job paths do all the time: a dict built, read and joined
    row = {"id": "job-1", "type": "system.noop", "attempt": 1}
    return "/".join(str(v) for v in row.values())


def thread_wake_us(round_trips: int = 2000) -> float:
    """Microseconds for one thread to wake another and be woken back (two locks, as the group
    commit's writer and a worker thread do twice per job): the median of a few runs."""
    ping, pong = threading.Lock(), threading.Lock()
    ping.acquire()
    pong.acquire()

    def peer() -> None:
        for _ in range(round_trips):
            ping.acquire()
            pong.release()

    runs = []
    for _ in range(3):
        thread = threading.Thread(target=peer, daemon=True)
        thread.start()
        began = time.perf_counter_ns()
        for _ in range(round_trips):
            ping.release()
            pong.acquire()
        runs.append((time.perf_counter_ns() - began) / round_trips / 1000)
        thread.join()
    return statistics.median(runs)


def costs_line() -> str:
    """Three unit costs that say how this machine treats the kinds of work in the figures.

    The ratios of ``bench/RESULTS.md`` move between machines of the same size: our worker and web
    process cross the kernel and wake threads more often per job than raw Dramatiq or hello-world
    do, so a machine whose system calls and wake-ups cost more (a virtual machine that clears CPU
    buffers on every return from the kernel, say) lowers our ratios more than its slower Python does.
    """
    python_ns = _best_ns(_python_step, 100_000)
    syscall_ns = _best_ns(os.getppid, 100_000)
    return (
        f"a small Python step (build, read and join a 3-key dict) {python_ns:,.0f} ns; "
        f"a system call (getppid) {syscall_ns:,.0f} ns; "
        f"a thread waking another and being woken back {thread_wake_us():,.1f} us"
    )


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


if __name__ == "__main__":  # python -m bench.machine: compare two machines before comparing their figures
    print(f"Machine: {machine_line({})}")
    print(f"Unit costs: {costs_line()}")
