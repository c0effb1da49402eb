"""``bench/RESULTS.md``: issue 16's targets, the figures, the details behind them, how they were taken."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.report_details import detail_sections, how_measured
from bench.results import (
    BUS_RATIO_TARGET,
    FILLED_RATIO_TARGET,
    HTTP_RATIO_TARGET,
    P99_TARGET_MS,
    TICKER_P99_TARGET_S,
    Ratio,
    Results,
    accepted_ratio,
    fastest,
    filled_ratio,
    http_ratios,
    met,
    row,
    spread,
)
from bench.web import WebResult


@dataclass
class Check:
    """One of issue 16's targets."""

    name: str
    measured: str
    target: str
    #: None: not measured in this run
    ok: bool | None


def checks(r: Results) -> list[Check]:
    """Issue 16's targets in its order, each from this run's figures."""

    def ratio_check(name: str, value: Ratio | None, target: str, ok: Any) -> Check:
        if value is None:
            return Check(name, "not measured", target, None)
        return Check(name, f"{value.value:.2f}", target, bool(ok(value.value)))

    web = r.web
    found = [
        ratio_check(
            "bus: ours / raw Dramatiq (2 x 8)",
            r.ratio("ours", "raw"),
            f">= {BUS_RATIO_TARGET}",
            lambda v: v >= BUS_RATIO_TARGET,
        )
    ]
    if web:
        stopped, _ = http_ratios(web)
        found += [
            Check(
                "`POST /v1/commands`, pool stopped / hello-world",
                f"{stopped:.2f}",
                f">= {HTTP_RATIO_TARGET}",
                stopped >= HTTP_RATIO_TARGET,
            ),
            Check(
                "p99 of `POST /v1/commands`, pool running",
                f"{web.ours.p99_ms:.1f} ms",
                f"< {P99_TARGET_MS:.0f} ms",
                web.ours.p99_ms < P99_TARGET_MS,
            ),
        ]
    else:
        found += [
            Check("`POST /v1/commands`, pool stopped / hello-world", "not measured", f">= {HTTP_RATIO_TARGET}", None),
            Check("p99 of `POST /v1/commands`, pool running", "not measured", f"< {P99_TARGET_MS:.0f} ms", None),
        ]
    if r.ticker:
        p99 = r.ticker["lag_p99"]
        found.append(
            Check("ticker p99 lag, slot -> enqueued", f"{p99 * 1000:,.0f} ms", "< 1 s", p99 < TICKER_P99_TARGET_S)
        )
    else:
        found.append(Check("ticker p99 lag, slot -> enqueued", "not measured", "< 1 s", None))
    found += [
        ratio_check("ours / procrastinate", r.ratio("ours", "procrastinate"), "> 1", lambda v: v > 1),
        ratio_check("ours / Celery", r.ratio("ours", "celery"), "> 1", lambda v: v > 1),
        ratio_check(
            "enqueue (the ingress's insert path) with 1,000,000 rows in `jobs` / on the empty table",
            accepted_ratio(r),
            f">= {FILLED_RATIO_TARGET} (within 10 %)",
            lambda v: v >= FILLED_RATIO_TARGET,
        ),
        ratio_check(
            "drain (the worker inserts each published job) with 1,000,000 rows / on the empty table",
            r.ratio("ours-filled", "ours"),
            f">= {FILLED_RATIO_TARGET} (within 10 %)",
            lambda v: v >= FILLED_RATIO_TARGET,
        ),
    ]
    return found


def done_when(r: Results) -> list[str]:
    lines = ["## Done when", "", row("Issue 16's target", "Measured", "Target", "Met"), row(*["---"] * 4)]
    lines += [row(c.name, c.measured, c.target, met(c.ok) if c.ok is not None else "not measured") for c in checks(r)]
    return [
        *lines,
        "",
        "Each figure is detailed below; a ratio is taken between runs of the same `make bench`. Where the CPU of a"
        " job and of a request goes: `bench/RESULTS-profile.md` (`python -m bench.profile_worker --profile`,"
        " `python -m bench.profile_web --profile`).",
        "",
    ]


def rate_row(r: Results, key: str, ref: str, figure: str, target: str = "") -> list[str]:
    runs = r.drains.get(key, [])
    best = fastest(runs)
    if best is None:
        return []
    return [row(ref, figure, f"{best.rate:,.0f}", spread([d.rate for d in runs]), target, "")]


def ratio_row(ref: str, figure: str, value: Ratio | None, target: str = "", ok: bool | None = None) -> list[str]:
    if value is None:
        return []
    return [row(ref, figure, f"{value.value:.2f}", spread(value.runs, ".2f"), target, met(ok))]


def drain_rows(r: Results) -> list[str]:
    bus = r.ratio("ours", "raw")
    peers = [(key, name, r.ratio("ours", key)) for key, name in (("procrastinate", "(p)"), ("celery", "(q)"))]
    big_raw, big_raw_big = r.ratio("ours-big", "raw"), r.ratio("ours-big", "raw-big")
    filled = filled_ratio(r)
    rows = [
        *rate_row(r, "raw", "(a)", "raw Dramatiq no-op actor, 2 x 8 worker (messages/s)", "baseline"),
        *rate_row(r, "ours", "(b)", "`system.noop` via `contracts.publish`, 2 x 8 pool (messages/s)"),
        *ratio_row(
            "(b)/(a)",
            "bus throughput ratio",
            bus,
            f">= {BUS_RATIO_TARGET}",
            None if bus is None else bus.value >= BUS_RATIO_TARGET,
        ),
        *rate_row(r, "procrastinate", "(p)", "procrastinate no-op task, 1 worker process, concurrency 16 (jobs/s)"),
        *rate_row(r, "celery", "(q)", "Celery no-op task, 2 prefork workers x 8, database results (tasks/s)"),
    ]
    for _key, name, value in peers:
        rows += ratio_row(
            f"(b)/{name}",
            f"ours / {'procrastinate' if name == '(p)' else 'Celery'}",
            value,
            "> 1",
            None if value is None else value.value > 1,
        )
    rows += [
        *rate_row(r, "raw-big", "(a) 4 x 8", "raw Dramatiq no-op actor, 4 x 8 worker (messages/s)"),
        *rate_row(r, "ours-big", "(s) 4 x 8", "`system.noop`, 4 x 8 pool (messages/s)"),
        *ratio_row("(s)/(a)", "ours 4 x 8 / raw Dramatiq 2 x 8", big_raw),
        *ratio_row("(s)/(a) 4 x 8", "ours 4 x 8 / raw Dramatiq 4 x 8", big_raw_big),
        *rate_row(r, "ours-filled", "(s) 1M", "`system.noop`, 2 x 8 pool, 1,000,000 rows in `jobs` (messages/s)"),
    ]
    accepted = accepted_ratio(r)
    if accepted is not None:
        rows += ratio_row(
            "(s) 1M enqueue",
            "ingress insert path (`AsyncJobs.insert`, 32 in flight), 1M rows / empty table, same servers",
            accepted,
            f">= {FILLED_RATIO_TARGET}",
            accepted.value >= FILLED_RATIO_TARGET,
        )
    drained = r.ratio("ours-filled", "ours")
    if drained is not None:
        rows += ratio_row(
            "(s) 1M/(b)",
            "drain throughput (the worker inserts each job's row), 1M rows / empty table",
            drained,
            f">= {FILLED_RATIO_TARGET}",
            drained.value >= FILLED_RATIO_TARGET,
        )
    if filled is not None:
        # contracts.publish sends to the broker only: its share of this figure does not touch `jobs`
        rows += ratio_row("(s) 1M/(b) info", "publish + drain throughput, 1M rows / empty table", filled)
    return rows


def web_rows(web: WebResult) -> list[str]:
    hello, ours, stopped = web.hello, web.ours, web.ours_pool_stopped
    stopped_ratio, running_ratio = http_ratios(web)
    runs_stopped = [a / b for a, b in zip(stopped.runs, hello.runs, strict=False)]
    runs_running = [a / b for a, b in zip(ours.runs, hello.runs, strict=False)]
    return [
        row(
            "(c)",
            "hello-world Starlette, 1 uvicorn process (requests/s)",
            f"{hello.rps:,.0f}",
            spread(hello.runs),
            "baseline",
            "",
        ),
        row(
            "(c)",
            "`POST /v1/commands`, 1 uvicorn process, pool stopped (requests/s)",
            f"{stopped.rps:,.0f}",
            spread(stopped.runs),
            "",
            "",
        ),
        row(
            "(c)",
            "HTTP throughput ratio, pool stopped",
            f"{stopped_ratio:.2f}",
            spread(runs_stopped, ".2f"),
            f">= {HTTP_RATIO_TARGET}",
            met(stopped_ratio >= HTTP_RATIO_TARGET),
        ),
        row("(c)", "`POST /v1/commands`, pool running (requests/s)", f"{ours.rps:,.0f}", spread(ours.runs), "", ""),
        row(
            "(c) info",
            "HTTP throughput ratio, pool running",
            f"{running_ratio:.2f}",
            spread(runs_running, ".2f"),
            "",
            "",
        ),
        row(
            "(c)",
            "p99 latency of `POST /v1/commands`, pool running",
            f"{ours.p99_ms:.1f} ms",
            "",
            f"< {P99_TARGET_MS:.0f} ms",
            met(ours.p99_ms < P99_TARGET_MS),
        ),
        row("(c) info", "p99 latency, pool stopped", f"{stopped.p99_ms:.1f} ms", "", "", ""),
    ]


def ticker_rows(t: dict[str, Any]) -> list[str]:
    dups = t["messages"] - t["distinct_messages"]
    missed = t["expected"] - t["emitted"]
    return [
        row(
            "(t)",
            "ticker p99 lag, slot -> enqueued",
            f"{t['lag_p99'] * 1000:,.0f} ms",
            "",
            "< 1 s",
            met(t["lag_p99"] < TICKER_P99_TARGET_S),
        ),
        row("(t) info", "ticker misses / duplicates", f"{missed:,} / {dups:,}", "", "0 / 0", met(missed == dups == 0)),
    ]


def figure_rows(r: Results) -> list[str]:
    rows = [row("", "Figure", "Measured", "Spread (min / median / max)", "Target", "Met"), row(*["---"] * 6)]
    rows += drain_rows(r)
    if r.web:
        rows += web_rows(r.web)
    if r.ticker:
        rows += ticker_rows(r.ticker)
    for m in r.memory or []:
        target = "" if m.target_mb is None else f"< {m.target_mb:.0f} MB"
        rows.append(row("(d)", f"idle RSS: {m.process}", f"{m.rss_mb:.1f} MB", "", target, met(m.met)))
    for scenario in r.errors:
        rows.append(row(scenario.split(" ")[0], f"{scenario}: a run failed (see below)", "", "", "", ""))
    return rows


def render(r: Results) -> str:
    minutes, seconds = divmod(round(r.elapsed_s), 60)
    lines = [
        "# Benchmark results",
        "",
        f"Written by `python -m bench` (`make bench`) on {r.started:%Y-%m-%d %H:%M} UTC; the run took "
        f"{minutes} min {seconds:02d} s.",
        "",
        *done_when(r),
        f"- Machine: {r.machine}",
        f"- Unit costs, measured before the run (`python -m bench.machine`; they explain why the same code "
        f"reaches other ratios on another machine of the same size): {r.costs}",
        f"- Software: {r.software}",
        f"- Load average before the run (1 / 5 / 15 min): {r.load_before}",
        *(f"- Machine before {name}: {text}" for name, text in r.quiet.items()),
        "",
        "## Figures",
        "",
        "Measured is the fastest run (a ratio: fastest over fastest); the spread is over the runs (a ratio's: "
        "over the ratios of each repeat's pair; the drains of a repeat run one after the other).",
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
