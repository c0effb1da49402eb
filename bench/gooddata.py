"""GoodData pool benchmark: ``python -m bench.gooddata`` writes bench/RESULTS-gooddata.md.

200 ``gooddata.workspace.create`` commands published onto the bus and run by one
gooddata worker process, against the same 200 ``create_or_update`` calls made in one
loop with the SDK directly, both talking to the replay server (tests/gooddata_replay.py)
answering with the recorded create interactions (GET -> 404, POST -> 201).

A replay server answers in well under a millisecond, far faster than GoodData Cloud,
which would make any per-job cost look huge next to it; so each comparison runs twice:
with no added latency (the bus's absolute cost per job) and with 50 ms per request, a
modest round trip to a SaaS API. The bus is measured with 1 worker thread (the cost per
call) and 4 threads (the gain from concurrency), rate limit off; a last run sets
GOODDATA_RATE_PER_S=20 to show the limiter holding the organisation's request rate.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.machine import load_average, machine_line
from bench.procs import BenchError, python, running, say, wait_for
from bench.services import Services, fresh, versions_seen
from contracts import gooddata, publish
from tests.gooddata_replay import RECORDINGS, ReplayServer, recording

COMMANDS = 200
WARMUP = 5
LATENCIES_S = (0.0, 0.05)
RESULTS = Path(__file__).resolve().parent / "RESULTS-gooddata.md"
TOKEN = "bench-token-not-a-secret"


@dataclass
class Run:
    label: str
    latency_s: float
    threads: int  # 0: the SDK directly, in one loop
    rate_per_s: float
    seconds: float
    #: bus runs: median time a job spent in the worker (started -> finished), ms
    job_median_ms: float | None = None

    @property
    def per_call_ms(self) -> float:
        return 1000 * self.seconds / COMMANDS

    @property
    def throughput(self) -> float:
        return COMMANDS / self.seconds


def scenario(ids: list[str]) -> list[dict]:
    """The recorded create (GET 404, POST 201) once per id, the id put in place of the recorded one."""
    recorded = recording("workspaces/demo_create_workspace.yaml")
    lookup, post = recorded[1], recorded[2]
    interactions = []
    for workspace_id in ids:
        get = copy.deepcopy(lookup)
        get["request"]["uri"] = get["request"]["uri"].replace("/workspaces/test?", f"/workspaces/{workspace_id}?")
        created = copy.deepcopy(post)
        created["response"]["body"]["string"]["data"]["id"] = workspace_id
        interactions += [get, created]
    return interactions


def direct(replay: ReplayServer, latency_s: float) -> Run:
    from gooddata_sdk import CatalogWorkspace, GoodDataSdk

    sdk = GoodDataSdk.create(replay.url, TOKEN)
    warm = [f"warm_direct_{i}" for i in range(WARMUP)]
    ids = [f"direct_{int(latency_s * 1000)}ms_{i:03d}" for i in range(COMMANDS)]
    replay.latency_s = 0.0
    replay.load(scenario(warm + ids))
    for workspace_id in warm:
        sdk.catalog_workspace.create_or_update(CatalogWorkspace(workspace_id, workspace_id, "demo"))
    replay.latency_s = latency_s
    start = time.perf_counter()
    for workspace_id in ids:
        sdk.catalog_workspace.create_or_update(CatalogWorkspace(workspace_id, workspace_id, "demo"))
    seconds = time.perf_counter() - start
    if replay.unmatched:
        raise BenchError(f"unrecorded requests: {replay.unmatched[:3]}")
    return Run("SDK directly, one loop", latency_s, 0, 0.0, seconds)


def finished(services: Services, ids: list[str]) -> list[dict] | None:
    with psycopg.connect(services.database_url, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute(
            "SELECT status, started_at, finished_at, error FROM jobs WHERE id = ANY(%s)", (ids,)
        ).fetchall()
    dead = [r for r in rows if r["status"] == "dead"]
    if dead:
        raise BenchError(f"{len(dead)} jobs died: {dead[0]['error']}")
    done = [r for r in rows if r["status"] == "succeeded"]
    return done if len(done) == len(ids) else None


def through_bus(
    services: Services, replay: ReplayServer, latency_s: float, threads: int, rate_per_s: float = 0.0
) -> Run:
    env = {
        **services.env(),
        "GOODDATA_HOST": replay.url,
        "GOODDATA_TOKEN": TOKEN,
        "GOODDATA_RATE_PER_S": str(rate_per_s),
    }
    tag = f"bus{threads}_{int(latency_s * 1000)}ms_{int(rate_per_s)}"
    warm = [f"warm_{tag}_{i}" for i in range(WARMUP)]
    ids = [f"{tag}_{i:03d}" for i in range(COMMANDS)]
    replay.latency_s = 0.0
    replay.load(scenario(warm + ids))
    args = python("-m", "dramatiq", "workers.pools.gooddata", "--queues", "gooddata", "--processes", "1")
    with running(f"gooddata-{tag}", [*args, "--threads", str(threads)], env) as worker, services.in_this_process():
        # warm up: the worker has started, imported the SDK and opened its connections
        warm_jobs = [publish(gooddata.WorkspaceCreate(workspace_id=w, parent_id="demo")) for w in warm]
        wait_for(lambda: finished(services, warm_jobs), 120, "the warm-up jobs", interval=0.1, watch=[worker])
        replay.latency_s = latency_s
        start_wall, start = time.time(), time.perf_counter()
        jobs = [publish(gooddata.WorkspaceCreate(workspace_id=w, parent_id="demo")) for w in ids]
        rows = wait_for(lambda: finished(services, jobs), 600, "the timed jobs", interval=0.05, watch=[worker])
        polled = time.perf_counter() - start
    last = max(r["finished_at"] for r in rows).timestamp()
    # the database's finish time, not the poll that noticed it (the poll adds up to 50 ms)
    seconds = min(polled, last - start_wall) if last > start_wall else polled
    durations = [(r["finished_at"] - r["started_at"]) / dt.timedelta(milliseconds=1) for r in rows]
    if replay.unmatched:
        raise BenchError(f"unrecorded requests: {replay.unmatched[:3]}")
    label = f"bus, 1 process x {threads} thread{'s' if threads > 1 else ''}"
    if rate_per_s:
        label += f", GOODDATA_RATE_PER_S={rate_per_s:g}"
    return Run(label, latency_s, threads, rate_per_s, seconds, statistics.median(durations))


def render(runs: list[Run]) -> str:
    lines = [
        "# GoodData pool benchmark",
        "",
        f"`python -m bench.gooddata`, {time.strftime('%Y-%m-%d %H:%M %Z')}.",
        "",
        f"Machine: {machine_line(versions_seen)}. Load average before: {load_average_seen}.",
        "",
        f"{COMMANDS} `gooddata.workspace.create` commands (each: GET the workspace -> 404, POST it -> 201, through",
        "the real gooddata-sdk) against a local replay server of the recorded interactions. *Direct* is the same",
        "`create_or_update` calls in one loop in one process. *Bus* publishes the commands onto Redis",
        "(`contracts.publish`) and one Dramatiq gooddata worker process runs them, each job recorded in",
        "PostgreSQL (queued/running/succeeded) and mirrored to Redis; the clock runs from the first publish to",
        "the last job's `finished_at`. Warm-up jobs run first, untimed.",
        "",
        "| added latency per request | run | total s | per call ms | calls/s | vs direct (per call) |",
        "|---|---|---|---|---|---|",
    ]
    for latency in LATENCIES_S:
        base = next(r for r in runs if r.latency_s == latency and r.threads == 0)
        for r in (r for r in runs if r.latency_s == latency):
            ratio = r.per_call_ms / base.per_call_ms
            lines.append(
                f"| {latency * 1000:.0f} ms | {r.label} | {r.seconds:.2f} | {r.per_call_ms:.1f} | "
                f"{r.throughput:.1f} | {ratio:.2f}x |"
            )
    lines += ["", "## Reading it", ""]
    for latency in LATENCIES_S:
        base = next(r for r in runs if r.latency_s == latency and r.threads == 0)
        one = next(r for r in runs if r.latency_s == latency and r.threads == 1)
        four = next(r for r in runs if r.latency_s == latency and r.threads == 4 and not r.rate_per_s)
        overhead = one.per_call_ms - base.per_call_ms
        lines.append(
            f"- {latency * 1000:.0f} ms per request: the bus adds {overhead:.1f} ms per call with one thread "
            f"({100 * overhead / base.per_call_ms:+.0f} % of a direct call of {base.per_call_ms:.1f} ms; "
            f"median job {one.job_median_ms:.1f} ms in the worker); with 4 threads the 200 calls take "
            f"{four.seconds:.2f} s against the direct loop's {base.seconds:.2f} s "
            f"({base.seconds / four.seconds:.2f}x its throughput)."
        )
    limited = [r for r in runs if r.rate_per_s]
    for r in limited:
        lines.append(
            f"- With GOODDATA_RATE_PER_S={r.rate_per_s:g}: {2 * COMMANDS} requests in {r.seconds:.1f} s "
            f"= {2 * COMMANDS / r.seconds:.1f} requests/s: the limiter, not the threads, sets the pace."
        )
    lines += [
        "",
        "The 20 % target holds where the remote call costs what a SaaS call costs; against a replay server",
        "answering in a fraction of a millisecond, no job system (a Postgres transaction to start a job and one to",
        "finish it, a Redis mirror write, the broker round trip) stays within 20 % of a bare HTTP call: the",
        "0 ms row is that fixed cost in absolute terms. The machine's 2 cores are shared (see the load",
        "average), so the 0 ms rows, which are CPU-bound, vary from run to run by tens of percent.",
        "",
    ]
    return "\n".join(lines)


load_average_seen = ""


def main() -> int:
    global load_average_seen
    if not (RECORDINGS / "README.md").is_file():
        print(f"the GoodData recordings are not at {RECORDINGS}", file=sys.stderr)
        return 2
    load_average_seen = load_average()
    runs: list[Run] = []
    replay = ReplayServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp, fresh(Path(tmp), "gooddata") as services:
            for latency in LATENCIES_S:
                say(f"direct loop, {latency * 1000:.0f} ms latency")
                runs.append(direct(replay, latency))
                for threads in (1, 4):
                    say(f"bus with {threads} threads, {latency * 1000:.0f} ms latency")
                    runs.append(through_bus(services, replay, latency, threads))
            say("bus with 4 threads, 50 ms latency, 20 requests/s")
            runs.append(through_bus(services, replay, 0.05, 4, rate_per_s=20))
    finally:
        replay.stop()
    RESULTS.write_text(render(runs))
    say(f"wrote {RESULTS}")
    print(json.dumps([r.__dict__ for r in runs], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
