"""Where the web process spends its CPU per request: ``python -m bench.profile_web``.

Like scenario (c) with the pool stopped (bench/web.py): one uvicorn process with the Procfile's
flags, on a fresh embedded Valkey and PostgreSQL, loaded by ``wrk`` with the bench's
``POST /v1/commands`` (32 connections, one wrk thread) for ``--seconds`` after a warm-up. It
prints the requests per second and the CPU seconds per request of the web process, PostgreSQL
and Valkey over the load, read from /proc as the bench does.

With ``--profile`` the web process runs under cProfile and the functions costing the most per
request are listed, own time and cumulative. The process is one thread, so the profile's clock
is the wall clock, and a coroutine counts a call each time it resumes. The profiler slows the
process several times over: compare the shares, not the absolute figures.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from bench import web
from bench.procinfo import CpuMeter
from bench.procs import running, say, wait_for
from bench.pstats_top import show_profile
from bench.services import fresh
from devservers import free_port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_web", description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds of load (default 10)")
    parser.add_argument("--profile", action="store_true", help="run the web process under cProfile")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--save", type=Path, help="keep the web process's profile there (pstats format)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (make bench installs it)", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="switchyard-profile-web-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        stats_path = root / "web.pstats"
        script = web.write_script(root)
        with fresh(root, "profile-web") as services:
            port = free_port()
            command = web.uvicorn("ingress.app:create_app", port, factory=True)
            if args.profile:  # python -m cProfile -o FILE -m uvicorn ...: written when uvicorn exits
                command = [command[0], "-m", "cProfile", "-o", str(stats_path), *command[1:]]
            base = f"http://127.0.0.1:{port}"
            url = base + "/v1/commands"
            with running("profile-web", command, services.env()) as proc:
                wait_for(lambda: web.http_ok(base + "/readyz"), 60, "the web process", interval=0.1, watch=[proc])
                web.post_command(base)
                warm = web.wrk(url, script, web.WARMUP_S, "warm-up", "profile-web-warmup")
                meter = CpuMeter({"web (uvicorn)": [proc.pid], **{n: [p] for n, p in services.pids.items()}})
                meter.start()
                load = web.wrk(url, script, args.seconds, "profile", "profile-web-wrk")
                used = meter.stop()
                if args.profile:
                    # uvicorn raises a SIGTERM again once it has shut down, which ends the process
                    # before cProfile writes; after a SIGINT it raises KeyboardInterrupt, and it does
                    proc.popen.send_signal(signal.SIGINT)
                    proc.popen.wait(30)
            say(f"{load.requests} requests in {load.seconds:.1f} s: {load.rps:.0f}/s, p99 {load.p99_ms:.1f} ms")
            if load.bad_status or load.socket_errors:
                say(f"{load.bad_status} responses >= 400, {load.socket_errors} socket errors")
            for name in ("web (uvicorn)", *services.pids, "other processes"):
                seconds = used.get(name, 0.0)
                print(f"{name:>16}: {seconds:6.2f} CPU-s = {1000 * seconds / load.requests:.3f} ms/request")
        if args.profile:
            answered = 1 + warm.requests + load.requests  # the profile holds every request answered
            show_profile(stats_path, answered, args.top, "request", args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
