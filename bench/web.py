"""Scenario (c): ``POST /v1/commands`` under load against a hello-world Starlette app.

Both apps run on one uvicorn process with the Procfile's flags and are loaded by
``wrk`` with the same Lua script (same POST, headers and body). Our app runs with
the ``system`` pool draining the queue, as in production; a second run of ours with
the pool stopped shows how much of the gap is the 2 cores being shared.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.bus import WORKER_SHAPE, job_counts, msgs_key, succeeded
from bench.procinfo import CpuMeter
from bench.procs import LOGS, ROOT, BenchError, Proc, python, running, say, wait_for
from bench.services import API_KEY, Services, base_env, fresh
from devservers import free_port

CONNECTIONS = 32
#: one wrk thread drives the 32 connections and leaves the other core to the server
WRK_THREADS = 1
WARMUP_S = 3
BODY = '{"type":"system.noop"}'

# wrk calls done() once after the run: one parseable line beats scraping its report.
# @BODY@ and @KEY@ are filled in by write_script().
LUA = """
wrk.method = "POST"
wrk.body = '@BODY@'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer @KEY@"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d "
      .. "connect=%d read=%d write=%d status=%d timeout=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""
_LINE = re.compile(r"^BENCH (.*)$", re.MULTILINE)


@dataclass
class Load:
    label: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    #: responses with a status >= 400
    bad_status: int
    socket_errors: int
    cpu: str = ""
    notes: list[str] = field(default_factory=list)
    #: requests/s of every repetition, this one included
    runs: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


@dataclass
class WebResult:
    hello: Load
    ours: Load
    ours_pool_stopped: Load


def write_script(directory: Path) -> Path:
    path = directory / "post.lua"
    path.write_text(LUA.replace("@BODY@", BODY).replace("@KEY@", API_KEY))
    return path


def wrk(url: str, script: Path, seconds: int, label: str, log_name: str) -> Load:
    args = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=False)
    (LOGS / f"{log_name}.log").write_text(done.stdout + done.stderr)
    match = _LINE.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr[-1000:] or done.stdout[-1000:]}")
    v = {k: int(n) for k, n in (pair.split("=") for pair in match[1].split())}
    return Load(
        label=label,
        requests=v["requests"],
        seconds=v["duration_us"] / 1e6,
        p50_ms=v["p50_us"] / 1000,
        p99_ms=v["p99_us"] / 1000,
        max_ms=v["max_us"] / 1000,
        bad_status=v["status"],
        socket_errors=v["connect"] + v["read"] + v["write"] + v["timeout"],
    )


#: the flags that choose uvicorn's event loop and HTTP protocol
_STACK = ("--loop", "--http")


def procfile_stack() -> list[str]:
    """The Procfile web command's ``--loop`` and ``--http`` flags: both apps run on the same event
    loop and HTTP parser, so the ratio compares the apps alone."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == "web":
            words = shlex.split(command)
            return [w for i, w in enumerate(words) if w in _STACK or (i > 0 and words[i - 1] in _STACK)]
    raise BenchError("the Procfile has no web process")


def uvicorn(app: str, port: int, *, factory: bool = False) -> list[str]:
    """The Procfile's web command line."""
    args = python("-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--no-access-log")
    args += procfile_stack()
    return [*args, "--factory"] if factory else args


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def post_command(base: str, body: str = BODY) -> str:
    request = urllib.request.Request(
        base + "/v1/commands",
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["id"]


@contextlib.contextmanager
def our_web(services: Services, name: str) -> Iterator[tuple[Proc, str]]:
    port = free_port()
    with running(name, uvicorn("ingress.app:create_app", port, factory=True), services.env()) as web:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(base + "/readyz"), 30, f"{name} to be ready", interval=0.1, watch=[web])
        yield web, base


def measure(url: str, script: Path, seconds: int, repeat: int, label: str, groups: dict[str, list[int]]) -> Load:
    """A warm-up, then ``repeat`` runs back to back; the fastest is the one least disturbed."""
    wrk(url, script, WARMUP_S, label, f"c-wrk-warmup-{label}")
    loads: list[Load] = []
    for run in range(1, repeat + 1):
        meter = CpuMeter(groups).start()
        load = wrk(url, script, seconds, label, f"c-wrk-{label}-{run}")
        meter.stop()
        load.cpu = meter.summary()
        say(f"(c) {label}, run {run}: {load.rps:.0f} requests/s, p99 {load.p99_ms:.1f} ms")
        loads.append(load)
    best = max(loads, key=lambda load: load.rps)
    best.runs = [load.rps for load in loads]
    return best


def hello(script: Path, seconds: int, repeat: int) -> Load:
    port = free_port()
    with running("c-hello-web", uvicorn("bench.hello_app:app", port), base_env()) as web:
        url = f"http://127.0.0.1:{port}/v1/commands"
        wait_for(lambda: http_ok(url), 30, "the hello-world app", interval=0.1, watch=[web])
        return measure(url, script, seconds, repeat, "hello", {"web (uvicorn)": [web.pid]})


def ours(root: Path, script: Path, seconds: int, repeat: int) -> tuple[Load, Load]:
    with fresh(root, "c-ours") as services, our_web(services, "c-ours-web") as (web, base):
        servers = {name: [pid] for name, pid in services.pids.items()}
        url = base + "/v1/commands"
        args = python("-m", "dramatiq", "workers.pools.system", "--queues", "system", *WORKER_SHAPE)
        with running("c-system-worker", args, services.env()) as worker:
            # one command end to end: the whole path works before it is loaded
            post_command(base)
            wait_for(lambda: succeeded(services.database_url) == 1, 30, "the first command", watch=[web, worker])
            groups = {"web (uvicorn)": [web.pid], "system workers": [worker.pid], **servers}
            loaded = measure(url, script, seconds, repeat, "ours", groups)
            loaded.notes.append(drain_note(services, worker))
        stopped = measure(url, script, seconds, repeat, "ours-pool-stopped", {"web (uvicorn)": [web.pid], **servers})
    return loaded, stopped


def drain_note(services: Services, worker: Proc) -> str:
    """How far the pool was behind when the load stopped, and how long it took to catch up."""
    client = services.redis()
    key = msgs_key(services, "system")
    backlog = int(client.hlen(key))  # type: ignore[arg-type]
    began = time.perf_counter()
    try:
        wait_for(lambda: client.hlen(key) == 0, 120, "the system queue to drain", interval=0.2, watch=[worker])
    except BenchError as err:
        return f"Queue backlog when the load stopped: {backlog} messages; {err}"
    took = time.perf_counter() - began
    counts = ", ".join(f"{n} {status}" for status, n in sorted(job_counts(services.database_url).items()))
    return f"Queue backlog when the load stopped: {backlog} messages, drained {took:.1f} s later; jobs: {counts}"


def http_load(root: Path, seconds: int, repeat: int) -> WebResult:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: apt-get install -y wrk (Debian package `wrk`)")
    script = write_script(root)
    say(f"(c) hello-world Starlette app: {WARMUP_S} s warm-up, {repeat} x {seconds} s measured")
    baseline = hello(script, seconds, repeat)
    say(f"(c) our app with the system pool running: {WARMUP_S} s warm-up, {repeat} x {seconds} s measured")
    loaded, stopped = ours(root, script, seconds, repeat)
    return WebResult(baseline, loaded, stopped)
