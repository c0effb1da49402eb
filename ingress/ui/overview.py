"""Overview: per queue depth, delayed, dead and rejected (poison) messages and jobs by status, the
last hour's throughput and failure rate; the worker processes alive with their queues and in-flight
jobs; health of Postgres, Redis and the broker."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from bus import broker_adapter as queues
from bus import presence, throughput
from bus.jobstore import OPEN
from contracts import QUEUES
from ingress.routes import health
from ingress.state import State
from ingress.ui.web import log, page, render, state_of

#: Redis reads of the page give up after this long (an outage must not hold the page)
READ_TIMEOUT_S = 2.0


def ago(seconds: float) -> str:
    """A short duration: "4 s", "3 min 5 s", "2 h 10 min"."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def rate_text(per_minute: float) -> str:
    # a quiet queue still shows something: 3 jobs an hour is 0.05/min, not 0.0
    if per_minute >= 10 or per_minute == 0:
        return f"{per_minute:.0f}"
    return f"{per_minute:.1f}" if per_minute >= 1 else f"{per_minute:.2f}"


def utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


async def last_hour(state: State) -> dict[str, throughput.Hour] | None:
    minutes = throughput.window(time.time())
    async with state.redis.pipeline(transaction=False) as pipe:
        throughput.ask(pipe, state.settings.broker_namespace, QUEUES, minutes)
        replies = await asyncio.wait_for(pipe.execute(), READ_TIMEOUT_S)
    return throughput.read(QUEUES, minutes, replies)


def hour_view(hour: throughput.Hour) -> dict[str, Any]:
    rate = hour.failure_rate
    return {
        "finished": hour.finished,
        "per_minute": rate_text(hour.per_minute),
        "failures": hour.failures,
        "failure_rate": "–" if rate is None else f"{100 * rate:.1f} %",
        "failing": rate is not None and rate > 0,
        # per minute, oldest first: every outcome, and the failed ones (drawn by sparkline.js)
        "spark": ",".join(str(m.finished + m.failed) for m in hour.minutes),
        "spark_failed": ",".join(str(m.failed + m.dead) for m in hour.minutes),
        "peak": max((m.finished + m.failed for m in hour.minutes), default=0),
    }


def worker_view(member: presence.Member, now: float) -> dict[str, Any]:
    return {
        "id": member.id,
        "host": member.host,
        "pid": member.pid,
        "role": member.role,
        "pool": member.pool,
        "queues": member.queues,
        "threads": member.threads,
        "state": member.state,
        "jobs": [{"id": j.id, "type": j.type, "running_for": ago(now - j.since)} for j in member.jobs],
        "seen": ago(now - member.seen_at),
        "started": utc(member.started_at),
        "uptime": ago(now - member.started_at),
    }


def consumers(members: list[presence.Member]) -> dict[str, tuple[int, int]]:
    """queue -> (worker processes, threads) consuming it."""
    found: dict[str, tuple[int, int]] = {}
    for m in members:
        if m.role == "worker" and m.state == "running":
            for q in m.queues:
                procs, threads = found.get(q, (0, 0))
                found[q] = (procs + 1, threads + m.threads)
    return found


def broker_counts(broker: Any) -> tuple[dict[str, tuple[int, int, int]], dict[str, int]]:
    """Queue depths and rejected (poison) messages per queue, in one trip to a worker thread."""
    return queues.depths(broker, QUEUES), queues.rejected_counts(broker, QUEUES)


@page
async def overview(request: Request) -> Response:
    state = state_of(request)
    checks = await health.checks(state)
    try:
        depths, rejected = await anyio.to_thread.run_sync(broker_counts, state.broker, limiter=state.dispatcher.limiter)
    except Exception as err:  # noqa: BLE001 - the page still shows what it can
        log.warning("queue depths unavailable: %s", err.__class__.__name__)
        depths, rejected = {}, {}
    by_status: dict[str, dict[str, int]] = {q: {} for q in QUEUES}
    try:
        # open jobs only: counting finished ones would read the whole table on every refresh
        for row in await state.jobs.open_counts():
            by_status.setdefault(row["queue"], {})[row["status"]] = row["n"]
    except Exception as err:  # noqa: BLE001
        log.warning("job counts unavailable: %s", err.__class__.__name__)
    try:
        hours = await last_hour(state)
    except Exception as err:  # noqa: BLE001
        log.warning("throughput counts unavailable: %s", err.__class__.__name__)
        hours = None
    members: list[presence.Member] | None
    try:
        members = await asyncio.wait_for(presence.alive(state.redis, state.settings.broker_namespace), READ_TIMEOUT_S)
    except Exception as err:  # noqa: BLE001
        log.warning("worker presence unavailable: %s", err.__class__.__name__)
        members = None
    serving = consumers(members or [])
    rows = [
        {
            "queue": q,
            "depth": depths.get(q),
            "rejected": rejected.get(q),
            "statuses": by_status.get(q, {}),
            "hour": None if hours is None else hour_view(hours[q]),
            "consumers": serving.get(q, (0, 0)),
        }
        for q in QUEUES
    ]
    now = time.time()
    return render(
        request,
        "overview.html",
        checks=checks,
        rows=rows,
        statuses=OPEN,
        workers=None if members is None else [worker_view(m, now) for m in members],
        ticker_alive=members is not None and any(m.role == "ticker" for m in members),
        keep_s=presence.KEEP_S,
        refresh=5000,
    )
