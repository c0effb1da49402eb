"""The details and the "How measured" sections of ``bench/RESULTS.md``."""

from __future__ import annotations

import re
from typing import Any

from bench import drains, peer_celery, peer_procrastinate, scale
from bench.bus import WORKER_SHAPE, Drain, shape_text
from bench.memory import IDLE_S, POOL_SHAPE
from bench.results import Results, fastest, met, row, spread
from bench.ticker import EVERY_MINUTE, EVERY_SECOND
from bench.web import CONNECTIONS, WARMUP_S, WRK_THREADS, Load

#: the process groups of a drain's CPU line that run the queue: the workers and the servers
QUEUE_GROUPS = ("workers", "valkey", "postgres")
#: a literal array of ids in a plan: the ids say nothing, the plan's shape does
_LONG_ARRAY = re.compile(r"'\{[^']{60,}\}'")


def rates(values: list[float]) -> str:
    return " / ".join(f"{v:,.0f}" for v in values)


def drain_lines(runs: list[Drain], label: str) -> list[str]:
    d = fastest(runs)
    assert d is not None
    figures = f"runs {rates([run.rate for run in runs])} messages/s"
    if len(runs) > 1:
        figures += f" (min / median / max {spread([run.rate for run in runs])})"
    return [
        f"- **{label}**: {figures}. The fastest drained {d.messages:,} messages in {d.seconds:.2f} s; all "
        f"{d.total:,} were enqueued beforehand in {d.enqueue_s:.1f} s, and the worker took {d.startup_s:.2f} s from "
        "spawn to its first finished message (not timed). Enqueue + drain: "
        f"{d.end_to_end_rate:,.0f} messages/s.",
        f"  CPU per message: workers {d.cpu_ms_per_message(('workers',)):.2f} ms, workers + Valkey + PostgreSQL "
        f"{d.cpu_ms_per_message(QUEUE_GROUPS):.2f} ms.",
        f"  CPU of that run: {d.cpu}.",
        *(f"  {note}." for note in d.notes),
    ]


def load_lines(load: Load, title: str) -> list[str]:
    figures = f"runs {rates(load.runs)} requests/s"
    if len(load.runs) > 1:
        figures += f" (min / median / max {spread(load.runs)})"
    return [
        f"- **{title}**: {figures}. The fastest: {load.requests:,} requests in "
        f"{load.seconds:.1f} s; latency p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms, max {load.max_ms:.1f} ms; "
        f"{load.bad_status} responses >= 400, {load.socket_errors} socket errors/timeouts.",
        f"  CPU of that run: {load.cpu}.",
        *(f"  {note}." for note in load.notes),
    ]


def drain_section(r: Results) -> list[str]:
    series = drains.catalogue([])
    lines: list[str] = []
    for key, one in series.items():
        if r.drains.get(key):
            lines += drain_lines(r.drains[key], one.label)
    return ["### Drains: (a)/(b) bus, (p)/(q) peers, (s) scale", "", *lines, ""] if lines else []


def plan_section(plans: list[scale.Plan]) -> list[str]:
    lines = [
        f"### (s) Query plans with {scale.FILLED_ROWS:,} rows in `jobs`",
        "",
        "`EXPLAIN` (the writes are planned, not made) after the drain above, with the parameters a real call binds.",
        "",
        row("Query", "Uses an index"),
        row("---", "---"),
        *(row(p.name, p.verdict) for p in plans),
        "",
    ]
    for p in plans:
        lines += [f"{p.name}:", "", "```", _LONG_ARRAY.sub("'{...}'", p.text), "```", ""]
    return lines


def ticker_section(f: dict[str, Any]) -> list[str]:
    """``f``: the figures of ``bench.ticker.run``."""
    return [
        "### (t) Ticker",
        "",
        f"- Slots expected / emitted in the {f['window_s']:.0f} s window: {f['expected']:,} / {f['emitted']:,}; "
        f"emitted but not enqueued at the end: {f['unenqueued']:,}; messages / distinct: "
        f"{f['messages']:,} / {f['distinct_messages']:,}.",
        f"- Lag slot -> enqueued: p50 {f['lag_p50'] * 1000:.0f} ms, p99 {f['lag_p99'] * 1000:.0f} ms, "
        f"max {f['lag_max'] * 1000:.0f} ms.",
        f"- Ticker CPU (both, user + sys): {f['cpu_share'] * 100:.0f} % of one core.",
        "",
    ]


def detail_sections(r: Results) -> list[str]:
    lines = drain_section(r)
    if r.plans:
        lines += plan_section(r.plans)
    if r.web:
        lines += [
            "### (c) HTTP",
            "",
            *load_lines(r.web.hello, "hello-world app"),
            *load_lines(r.web.ours, "`POST /v1/commands` with the `system` pool running"),
            *load_lines(r.web.ours_pool_stopped, "`POST /v1/commands` with the `system` pool stopped"),
            "",
            "What ran concurrently: for the hello-world run only its uvicorn process and wrk. For ours, on the "
            f"same 2 cores: our uvicorn process, the `system` pool ({shape_text(WORKER_SHAPE)}) draining the "
            "queue, PostgreSQL, Valkey and wrk (the CPU lines above say how much each used); the last measurement "
            "stops the pool, so the queue only grows.",
            "",
        ]
    if r.ticker:
        lines += ticker_section(r.ticker)
    if r.memory:
        header = row("Process", "RSS", "USS", "CPU while idle", "Target", "Met")
        lines += ["### (d) Idle memory", "", header, row(*["---"] * 6)]
        for m in r.memory:
            uss = "n/a" if m.uss_mb is None else f"{m.uss_mb:.1f} MB"
            target = "" if m.target_mb is None else f"< {m.target_mb:.0f} MB"
            lines.append(row(m.process, f"{m.rss_mb:.1f} MB", uss, f"{m.idle_cpu_pct:.1f} %", target, met(m.met)))
        lines += [
            "",
            "USS is the memory only that process holds (a forked worker shares the rest with its parent); CPU while "
            f"idle is over the {IDLE_S:.0f} s pause, in % of one core.",
            "",
        ]
    for scenario, error in r.errors.items():
        lines += [f"### {scenario}: failed", "", "```", error.strip(), "```", ""]
    return lines


def how_measured(r: Results) -> list[str]:
    shape = " ".join(WORKER_SHAPE)
    return [
        "Every run gets its own embedded Valkey (no persistence) and, where needed, a new PostgreSQL (fsync "
        "on, as `make up` runs it), migrated from scratch for ours, under a temporary directory; process logs are in "
        f"`bench/out/`. Each measurement is taken {r.repeat} times and the fastest run is reported (other "
        "processes can only slow a run down); the spread column and the details give every run.",
        "",
        f"- Drains: {r.messages:,} messages ({r.peer_messages:,} for the peers, which are slower: as many would take "
        "most of the run; a rate is a rate once start-up is left out) are put on the queue first, then the worker "
        "starts, and the clock runs from the first message seen finished (start-up is not timed) to the last. "
        "Every repeat runs each series once, in turn, so a disturbance of the machine does not hit one side only.",
        f"  - (a) `dramatiq bench.raw_actor {shape}`: a no-op actor on a plain `RedisBroker` with Dramatiq's "
        "default middleware; done when the broker's message hash is empty.",
        f"  - (b) `dramatiq workers.pools.system {shape}`: `system.noop` published with `contracts.publish`, run "
        "with our broker set-up and job lifecycle (two job-store writes to PostgreSQL, two Redis status mirrors per "
        "message); done when the message hash is empty and no row of `jobs` is queued, running or failed.",
        f"  - (p) procrastinate (`procrastinate ... worker --concurrency {peer_procrastinate.CONCURRENCY}`, one "
        "process, asyncio, an `async def` no-op task, its connector's default pool) on a database of its own made "
        "with its `schema_manager.apply_schema()`; jobs deferred with `batch_defer`, "
        f"{peer_procrastinate.DEFER_BATCH:,} a statement; done when no row of `procrastinate_jobs` is `todo` or "
        f"`doing` (polled every {peer_procrastinate.POLL_S} s).",
        f"  - (q) Celery: {peer_celery.WORKERS} `celery worker --pool prefork --concurrency "
        f"{peer_celery.CONCURRENCY}` processes (2 x 8 child processes, the shape of ours), the Redis broker on "
        "the run's Valkey, the SQLAlchemy database result backend (`db+postgresql+psycopg://`) on a database of "
        "its own, `task_track_started=True` (a STARTED and a SUCCESS write per task, as ours writes running and "
        "succeeded), otherwise Celery's defaults (it acknowledges a task before running it, where ours "
        "acknowledges after the outcome is in PostgreSQL); tasks sent with `send_task` on one producer; done "
        f"when every `celery_taskmeta` row is SUCCESS (polled every {peer_celery.POLL_S} s).",
        "  - Both peers run with their log level at WARNING: at INFO each logs two lines per job, which ours and "
        "Dramatiq do not.",
        f"  - (s) scale: (b) and (a) with `{' '.join(drains.BIG_SHAPE)}`, the same message count; and (b) on a "
        f"`jobs` table holding {scale.FILLED_ROWS:,} succeeded jobs (one `INSERT ... SELECT generate_series` with "
        "random ids over 30 days, their `job_events` rows likewise, then `VACUUM ANALYZE` and `CHECKPOINT`), "
        "compared with (b) on an empty table by enqueue + drain throughput (all messages over the time to enqueue "
        "them plus the time to drain them at the measured rate).",
        f"- (c): each app runs on one uvicorn process with the Procfile's flags (`--no-access-log`), loaded by "
        f"`wrk -t{WRK_THREADS} -c{CONNECTIONS} --latency` with one Lua script (`POST`, body "
        f'`{{"type":"system.noop"}}`, a bearer key; the hello-world app ignores both): {WARMUP_S} s warm-up, '
        f"then {r.repeat} x {r.seconds} s; p99 is wrk's.",
        f"- (t): `bench.ticker`'s run, shortened to {r.ticker_minutes:g} min (`python -m bench.ticker` runs 5): "
        f"{EVERY_MINUTE:,} schedules every minute + {EVERY_SECOND:,} every second, two tickers, one killed with "
        "SIGKILL halfway, no worker; lag is from each slot to its job's `enqueued_at`.",
        f"- (d): web, the `system` pool ({' '.join(POOL_SHAPE)}, the Procfile's default) and the ticker start, "
        f"one `system.noop` goes through the API to `succeeded`, then after {IDLE_S:.0f} s idle each process's "
        "RSS is read (MB = 10^6 bytes).",
        "- CPU lines: CPU seconds each process tree used in the timed window (from /proc). 'Other processes' is "
        "whatever else ran on the machine meanwhile and 'stolen by the hypervisor' the time the virtual machine's "
        "cores waited for the host: a large value of either marks a disturbed figure. Compare ratios taken in the "
        "same run, not absolute numbers across machines.",
    ]
