"""The ticker under load: 10,000 schedules every minute plus 1,000 every second, two
tickers, one killed (SIGKILL) halfway. Lag from slot to enqueue, duplicates, misses, CPU.

    .venv/bin/python -m bench.ticker [--minutes 5]

No worker runs: the messages stay in Redis, so every message the tickers sent is counted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.machine import machine_line
from bench.procinfo import cpu_seconds
from bench.procs import Proc, publish_results, python, say
from bench.services import Services, fresh, versions_seen

EVERY_MINUTE, EVERY_SECOND = 10_000, 1_000


def create_schedules(database_url: str) -> None:
    """Straight into the table (the API path is tested elsewhere); next slots as the store computes them."""
    now = dt.datetime.now(dt.UTC)
    next_minute = (now + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    next_second = (now + dt.timedelta(seconds=2)).replace(microsecond=0)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO schedules (name, cron, command, command_type, next_fire_at)"
            " SELECT 'minute-' || i, '* * * * *', '{\"type\": \"system.noop\"}', 'system.noop', %s"
            " FROM generate_series(1, %s) i",
            (next_minute, EVERY_MINUTE),
        )
        conn.execute(
            "INSERT INTO schedules (name, cron, command, command_type, next_fire_at)"
            " SELECT 'second-' || i, '* * * * * *', '{\"type\": \"system.noop\"}', 'system.noop', %s"
            " FROM generate_series(1, %s) i",
            (next_second, EVERY_SECOND),
        )
        conn.execute("ANALYZE schedules")


def expected_slots(start: dt.datetime, end: dt.datetime) -> int:
    """Slots of every schedule in [start, end): what a perfect ticker emits."""
    seconds = int((end - start).total_seconds())
    minutes = sum(1 for s in range(seconds) if (start + dt.timedelta(seconds=s)).second == 0)
    return EVERY_SECOND * seconds + EVERY_MINUTE * minutes


def analyse(services: Services, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    with psycopg.connect(services.database_url) as conn:
        rows = conn.execute(
            "SELECT (options->>'scheduled_at')::timestamptz AS slot, enqueued_at FROM jobs"
            " WHERE (options->>'scheduled_at')::timestamptz >= %s AND (options->>'scheduled_at')::timestamptz < %s",
            (start, end),
        ).fetchall()
        total_jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]  # type: ignore[index]
    lags = sorted((enq - slot).total_seconds() for slot, enq in rows if enq is not None)
    client = services.redis()
    queue = f"{services.namespace}:system"
    ids = client.lrange(queue, 0, -1)
    message_ids: dict[str, int] = {}
    for chunk in range(0, len(ids), 10_000):
        for body in client.hmget(f"{queue}.msgs", ids[chunk : chunk + 10_000]):
            mid = json.loads(body)["message_id"]
            message_ids[mid] = message_ids.get(mid, 0) + 1
    return {
        "emitted": len(rows),
        "expected": expected_slots(start, end),
        "unenqueued": sum(1 for _, enq in rows if enq is None),
        "messages": sum(message_ids.values()),
        "distinct_messages": len(message_ids),
        "jobs": total_jobs,
        "lag_p50": statistics.median(lags) if lags else float("nan"),
        "lag_p99": lags[int(len(lags) * 0.99) - 1] if lags else float("nan"),
        "lag_max": lags[-1] if lags else float("nan"),
    }


def run(minutes: float, root: Path) -> dict[str, Any]:
    with fresh(root, "ticker") as services:
        create_schedules(services.database_url)
        env = {**services.env(), "SWEEP_INTERVAL_S": "2"}
        say(f"{EVERY_MINUTE} every-minute + {EVERY_SECOND} every-second schedules, two tickers, {minutes} min")
        tickers = [Proc(f"ticker-{i}", python("-m", "workers.ticker"), env) for i in range(2)]
        try:
            time.sleep(3)
            start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
            half = minutes * 30
            time.sleep(half)
            cpu_killed = cpu_seconds([tickers[0].pid])
            tickers[0].popen.kill()
            say("ticker-0 killed (SIGKILL)")
            time.sleep(half)
            end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=5)
            cpu_survivor = cpu_seconds([tickers[1].pid])
            time.sleep(6)  # let the last slots be enqueued and marked
        finally:
            for t in tickers:
                t.stop()
        figures = analyse(services, start, end)
        wall = minutes * 60 + 3
        figures.update(
            cpu_killed_s=cpu_killed,
            cpu_survivor_s=cpu_survivor,
            cpu_share=(cpu_killed + cpu_survivor) / wall,
            window_s=(end - start).total_seconds(),
        )
        return figures


def report(figures: dict[str, Any], minutes: float) -> str:
    dups = figures["messages"] - figures["distinct_messages"]
    missed = figures["expected"] - figures["emitted"]
    return "\n".join(
        [
            "## Ticker: exactly once per slot under load",
            "",
            f"Machine: {machine_line(versions_seen)}",
            "",
            f"{EVERY_MINUTE:,} schedules every minute + {EVERY_SECOND:,} every second, two tickers for"
            f" {minutes:g} min, one killed with SIGKILL halfway; no worker (every message stays in Redis and is"
            f" counted). Slots checked: {figures['window_s']:.0f} s window.",
            "",
            "| figure | value | target |",
            "|---|---|---|",
            f"| slots expected / emitted | {figures['expected']:,} / {figures['emitted']:,} | equal |",
            f"| misses | {missed:,} | 0 |",
            f"| duplicates (messages - distinct message ids) | {dups:,} | 0 |",
            f"| emitted but not yet enqueued at the end | {figures['unenqueued']:,} | 0 |",
            f"| lag slot -> enqueued, p50 | {figures['lag_p50'] * 1000:.0f} ms | |",
            f"| lag slot -> enqueued, p99 | {figures['lag_p99'] * 1000:.0f} ms | < 1000 ms |",
            f"| lag max | {figures['lag_max'] * 1000:.0f} ms | |",
            f"| ticker CPU (both, user+sys) | {figures['cpu_share'] * 100:.0f} % of one core"
            f" ({figures['cpu_killed_s']:.0f} s + {figures['cpu_survivor_s']:.0f} s) | |",
            "",
            "Lag is measured to `enqueued_at`, which is stamped after the whole batch of a tick was sent:"
            " an upper bound of each message's own enqueue time.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ticker")
    parser.add_argument("--minutes", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ticker-") as tmp:
        figures = run(args.minutes, Path(tmp))
    text = report(figures, args.minutes)
    publish_results("ticker", text)


if __name__ == "__main__":
    main()
