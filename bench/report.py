"""``bench/RESULTS.md``: the figures against their targets, the details behind them, how they were taken."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from bench.bus import WORKER_SHAPE, Drain
from bench.memory import IDLE_S, POOL_SHAPE, Rss
from bench.web import CONNECTIONS, WARMUP_S, WRK_THREADS, Load, WebResult

BUS_RATIO_TARGET = 0.6
HTTP_RATIO_TARGET = 0.5
P99_TARGET_MS = 50.0


@dataclass
class Results:
    started: dt.datetime
    machine: str
    software: str
    load_before: str
    messages: int
    seconds: int
    repeat: int
    #: every repetition of (a) and of (b); the fastest of each is the figure
    raw_runs: list[Drain] = field(default_factory=list)
    ours_runs: list[Drain] = field(default_factory=list)
    web: WebResult | None = None
    memory: list[Rss] | None = None
    #: scenario -> why it produced no figures
    errors: dict[str, str] = field(default_factory=dict)
    #: scenario -> how busy the machine was just before it
    quiet: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def raw(self) -> Drain | None:
        return fastest(self.raw_runs)

    @property
    def ours(self) -> Drain | None:
        return fastest(self.ours_runs)


def fastest(runs: list[Drain]) -> Drain | None:
    """Another process can only slow a run down: the fastest is the least disturbed."""
    return max(runs, key=lambda d: d.rate, default=None)


def met(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "**not met**")


def row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def figure_rows(r: Results) -> list[str]:
    rows = [row("", "Figure", "Measured", "Target", "Met"), row(*["---"] * 5)]
    shape = " x ".join(WORKER_SHAPE[1::2])
    if r.raw and r.ours:
        ratio = r.ours.rate / r.raw.rate
        rows += [
            row("(a)", f"raw Dramatiq no-op actor, {shape} worker (messages/s)", f"{r.raw.rate:,.0f}", "baseline", ""),
            row(
                "(b)",
                f"`system.noop` via `contracts.publish`, {shape} pool (messages/s)",
                f"{r.ours.rate:,.0f}",
                "",
                "",
            ),
            row(
                "(b)/(a)",
                "bus throughput ratio",
                f"{ratio:.2f}",
                f">= {BUS_RATIO_TARGET}",
                met(ratio >= BUS_RATIO_TARGET),
            ),
        ]
    if r.web:
        hello, ours, stopped = r.web.hello, r.web.ours, r.web.ours_pool_stopped
        ratio = ours.rps / hello.rps
        p99 = f"{ours.p99_ms:.1f} ms"
        rows += [
            row("(c)", "hello-world Starlette, 1 uvicorn process (requests/s)", f"{hello.rps:,.0f}", "baseline", ""),
            row("(c)", "`POST /v1/commands`, 1 uvicorn process, pool running (requests/s)", f"{ours.rps:,.0f}", "", ""),
            row(
                "(c)",
                "HTTP throughput ratio",
                f"{ratio:.2f}",
                f">= {HTTP_RATIO_TARGET}",
                met(ratio >= HTTP_RATIO_TARGET),
            ),
            row(
                "(c)",
                "p99 latency of `POST /v1/commands`",
                p99,
                f"< {P99_TARGET_MS:.0f} ms",
                met(ours.p99_ms < P99_TARGET_MS),
            ),
        ]
        measured = f"{stopped.rps:,.0f}, {stopped.rps / hello.rps:.2f}, {stopped.p99_ms:.1f} ms"
        rows.append(row("(c) info", "same, `system` pool stopped: requests/s, ratio, p99", measured, "", ""))
    for m in r.memory or []:
        target = "" if m.target_mb is None else f"< {m.target_mb:.0f} MB"
        rows.append(row("(d)", f"idle RSS: {m.process}", f"{m.rss_mb:.1f} MB", target, met(m.met)))
    for scenario in r.errors:
        rows.append(row(scenario, "no figures: the scenario failed (see below)", "", "", ""))
    return rows


def rates(values: list[float]) -> str:
    return " / ".join(f"{v:,.0f}" for v in values)


def drain_lines(runs: list[Drain], messages: int) -> list[str]:
    d = fastest(runs)
    assert d is not None
    return [
        f"- **{d.label}**: runs {rates([run.rate for run in runs])} messages/s. The fastest drained "
        f"{d.messages:,} messages in {d.seconds:.2f} s; all {messages:,} were enqueued beforehand in "
        f"{d.enqueue_s:.1f} s, and the worker took {d.startup_s:.2f} s from spawn to its first acknowledged "
        "message (not timed).",
        f"  CPU of that run: {d.cpu}.",
    ]


def load_lines(load: Load, title: str) -> list[str]:
    return [
        f"- **{title}**: runs {rates(load.runs)} requests/s. The fastest: {load.requests:,} requests in "
        f"{load.seconds:.1f} s; latency p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms, max {load.max_ms:.1f} ms; "
        f"{load.bad_status} responses >= 400, {load.socket_errors} socket errors/timeouts.",
        f"  CPU of that run: {load.cpu}.",
        *(f"  {note}." for note in load.notes),
    ]


def detail_sections(r: Results) -> list[str]:
    lines: list[str] = []
    if r.raw_runs and r.ours_runs:
        lines += ["### (a)/(b) Bus throughput", "", *drain_lines(r.raw_runs, r.messages)]
        lines += drain_lines(r.ours_runs, r.messages)
        lines.append("")
    if r.web:
        lines += [
            "### (c) HTTP",
            "",
            *load_lines(r.web.hello, "hello-world app"),
            *load_lines(r.web.ours, "`POST /v1/commands` with the `system` pool running"),
            *load_lines(r.web.ours_pool_stopped, "`POST /v1/commands` with the `system` pool stopped"),
            "",
            "What ran concurrently: for the hello-world run only its uvicorn process and wrk. For ours, on the "
            f"same 2 cores: our uvicorn process, the `system` pool ({' x '.join(WORKER_SHAPE[1::2])}) draining the "
            "queue, PostgreSQL, Valkey and wrk (the CPU lines above say how much each used); the last measurement "
            "stops the pool, so the queue only grows.",
            "",
        ]
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
        "Every scenario gets its own embedded Valkey (no persistence) and, where needed, a new PostgreSQL (fsync "
        "on, as `make up` runs it) migrated from scratch, under a temporary directory; process logs are in "
        f"`bench/out/`. Each measurement is taken {r.repeat} times and the fastest run is reported (other "
        "processes can only slow a run down); the details list every run.",
        "",
        f"- (a)/(b): {r.messages:,} messages are put on the queue first, then `dramatiq ... {shape}` starts: (a) "
        "a no-op actor on a plain `RedisBroker` with Dramatiq's default middleware; (b) `workers.pools.system` "
        "with our broker set-up and job lifecycle (two job-store writes to PostgreSQL, two Redis status mirrors "
        "per message). The clock runs from the first acknowledged message (start-up is not timed) until the "
        "broker's message hash is empty (a) or every row in `jobs` is `succeeded` (b). (a) and (b) alternate.",
        f"- (c): each app runs on one uvicorn process with the Procfile's flags (`--no-access-log`), loaded by "
        f"`wrk -t{WRK_THREADS} -c{CONNECTIONS} --latency` with one Lua script (`POST`, body "
        f'`{{"type":"system.noop"}}`, a bearer key; the hello-world app ignores both): {WARMUP_S} s warm-up, '
        f"then {r.repeat} x {r.seconds} s; p99 is wrk's.",
        f"- (d): web, the `system` pool ({' '.join(POOL_SHAPE)}, the Procfile's default) and the ticker start, "
        f"one `system.noop` goes through the API to `succeeded`, then after {IDLE_S:.0f} s idle each process's "
        "RSS is read (MB = 10^6 bytes).",
        "- CPU lines: CPU seconds each process tree used in the timed window (from /proc). 'Other processes' is "
        "whatever else ran on the machine meanwhile and 'stolen by the hypervisor' the time the virtual machine's "
        "cores waited for the host: a large value of either marks a disturbed figure. Compare ratios taken in the "
        "same run, not absolute numbers across machines.",
    ]


def render(r: Results) -> str:
    minutes, seconds = divmod(round(r.elapsed_s), 60)
    lines = [
        "# Benchmark results",
        "",
        f"Written by `python -m bench` (`make bench`) on {r.started:%Y-%m-%d %H:%M} UTC; the run took "
        f"{minutes} min {seconds:02d} s.",
        "",
        f"- Machine: {r.machine}",
        f"- Software: {r.software}",
        f"- Load average before the run (1 / 5 / 15 min): {r.load_before}",
        *(f"- Machine before {name}: {text}" for name, text in r.quiet.items()),
        "",
        "## Figures",
        "",
        *figure_rows(r),
        "",
        "## Details",
        "",
        *detail_sections(r),
        "## How measured",
        "",
        *how_measured(r),
        "",
    ]
    return "\n".join(lines)
