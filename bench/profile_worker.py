"""Where a worker process spends its CPU per job: ``python -m bench.profile_worker``.

Like scenario (b) (bench/bus.py): ``--messages`` ``system.noop`` commands are published onto a
fresh embedded Valkey and PostgreSQL first, then one ``system`` pool worker drains them
(``--processes 1 --threads 8`` by default). It prints the CPU seconds per job of the worker,
PostgreSQL and Valkey over the drain (from the first acknowledged message until every job has
succeeded), read from /proc as the bench does, and how the worker's CPU divides between its
kinds of threads (Dramatiq's worker and consumer threads, the group commit's writer, ...; their
whole life, start-up and shutdown included), read from each thread's CPU clock.

With ``--profile`` every thread of the worker process runs under cProfile timed by its own CPU
clock (a thread waiting on a lock or a socket costs nothing), and the functions costing the most
CPU per job are listed, own time and cumulative. The profiler slows the worker several times
over: compare the shares, not the absolute figures.

The worker side: ``python -m dramatiq bench.profile_worker`` loads the ``system`` pool, plus what
the environment asks for: the thread clocks (``PROFILE_WORKER_CLOCKS``) and the profiler
(``PROFILE_WORKER_OUT``), each written to the file it names when the worker shuts down.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import dramatiq

from bench.pstats_top import show_profile

#: the worker writes its merged statistics there when it shuts down (set by the driver)
OUT_VAR = "PROFILE_WORKER_OUT"
#: the worker writes the CPU seconds of its kinds of threads there when it shuts down
CLOCKS_VAR = "PROFILE_WORKER_CLOCKS"


class _ThreadProfiles(dramatiq.Middleware):
    """Runs every thread started after boot under its own cProfile; merges them at shutdown."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _first_call(self, frame: FrameType, event: str, arg: Any) -> None:
        # the first profile event of a new thread: hand the thread over to a C profiler of its own,
        # timed by this thread's CPU clock read from any thread (the merge at shutdown ends the
        # calls still open in other threads: their times must come from their own clocks)
        clock = time.pthread_getcpuclockid(threading.get_ident())
        profile = cProfile.Profile(functools.partial(time.clock_gettime, clock))
        with self._lock:
            self.profiles.append(profile)
        profile.enable()

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        threading.setprofile(self._first_call)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        threading.setprofile(None)  # type: ignore[arg-type]
        with self._lock:
            profiles = list(self.profiles)
        if profiles:
            stats = pstats.Stats(profiles[0])
            for profile in profiles[1:]:
                stats.add(profile)
            stats.dump_stats(str(self.out))


class _ThreadClocks(dramatiq.Middleware):
    """The CPU seconds of each kind of thread (Dramatiq's worker and consumer threads, the group
    commit's writer, ...), written as JSON at shutdown: where the time goes, without a profiler."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.used: dict[str, float] = {}
        self._lock = threading.Lock()

    def _add(self, thread: threading.Thread, seconds: float) -> None:
        kind = type(thread).__name__ if type(thread) is not threading.Thread else thread.name.rstrip("0123456789-")
        with self._lock:
            self.used[kind] = self.used.get(kind, 0.0) + seconds

    def before_worker_thread_shutdown(self, broker: dramatiq.Broker, thread: threading.Thread) -> None:
        self._add(thread, time.thread_time())

    def before_consumer_thread_shutdown(self, broker: dramatiq.Broker, thread: threading.Thread) -> None:
        self._add(thread, time.thread_time())

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        for thread in threading.enumerate():
            if thread.daemon and thread.ident is not None:
                self._add(thread, time.clock_gettime(time.pthread_getcpuclockid(thread.ident)))
        self.out.write_text(json.dumps(self.used))


def _worker_side() -> None:
    from workers.pools import system  # noqa: F401 - builds the broker and declares the pool's actors

    out = os.environ.get(OUT_VAR)
    if out:
        dramatiq.get_broker().add_middleware(_ThreadProfiles(Path(out)))
    clocks = os.environ.get(CLOCKS_VAR)
    if clocks:
        dramatiq.get_broker().add_middleware(_ThreadClocks(Path(clocks)))


def main(argv: list[str] | None = None) -> int:
    from bench.bus import hash_size, job_counts, msgs_key, watch_drain, worker_groups
    from bench.procinfo import CpuMeter
    from bench.procs import python, running, say, wait_for
    from bench.services import fresh
    from contracts import publish, system

    parser = argparse.ArgumentParser(prog="python -m bench.profile_worker", description=__doc__)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--profile", action="store_true", help="run the worker's threads under cProfile")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--save", type=Path, help="keep the worker's profile there (pstats format)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="switchyard-profile-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        stats_path = root / "worker.pstats"
        with fresh(root, "profile") as services, services.in_this_process():
            for _ in range(args.messages):
                publish(system.Noop())
            env = services.env()
            clocks_path = root / "threads.json"
            env[CLOCKS_VAR] = str(clocks_path)
            if args.profile:
                env[OUT_VAR] = str(stats_path)
            shape = ("--processes", str(args.processes), "--threads", str(args.threads))
            command = python("-m", "dramatiq", "bench.profile_worker", "--queues", "system", *shape)
            with running("profile-worker", command, env) as worker:
                meter = CpuMeter(worker_groups(services, worker))
                key = msgs_key(services, "system")
                _, drained, _ = watch_drain(hash_size(services.redis(), key), args.messages, [worker], meter)
                wait_for(
                    lambda: job_counts(services.database_url).get("succeeded", 0) == args.messages,
                    60,
                    f"{args.messages} succeeded jobs",
                    interval=0.1,
                    watch=[worker],
                )
                used = meter.stop()
            say(f"{drained} jobs drained in {meter.seconds:.2f} s")
            for name in ("workers", "postgres", "valkey", "other processes"):
                print(f"{name:>16}: {used[name]:6.2f} CPU-s = {1000 * used[name] / drained:.3f} ms/job")
            wait_for(clocks_path.exists, 30, "the worker's thread clocks")
            threads = json.loads(clocks_path.read_text())
            for kind, seconds in sorted(threads.items(), key=lambda kv: -kv[1]):
                print(f"  thread {kind:>24}: {seconds:6.2f} CPU-s = {1000 * seconds / drained:.3f} ms/job")
            if args.profile:
                show_profile(stats_path, drained, args.top, "job", args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
else:
    _worker_side()
