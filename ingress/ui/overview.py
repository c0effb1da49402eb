"""Overview: per queue depth, delayed, dead and jobs by status; health of Postgres, Redis and the broker."""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import Response

from contracts import QUEUES, JobStatus
from ingress.routes import health
from ingress.ui.web import log, page, render, state_of
from workers import queues


@page
async def overview(request: Request) -> Response:
    state = state_of(request)
    checks = await health.checks(state)
    try:
        depths = await anyio.to_thread.run_sync(queues.depths, state.broker, QUEUES, limiter=state.dispatcher.limiter)
    except Exception as err:  # noqa: BLE001 - the page still shows what it can
        log.warning("queue depths unavailable: %s", err.__class__.__name__)
        depths = {}
    by_status: dict[str, dict[str, int]] = {q: {} for q in QUEUES}
    try:
        for row in await state.jobs.counts():
            by_status.setdefault(row["queue"], {})[row["status"]] = row["n"]
    except Exception as err:  # noqa: BLE001
        log.warning("job counts unavailable: %s", err.__class__.__name__)
    rows = [
        {"queue": q, "depth": depths.get(q), "statuses": by_status.get(q, {}), "total": sum(by_status[q].values())}
        for q in QUEUES
    ]
    return render(
        request, "overview.html", checks=checks, rows=rows, statuses=[s.value for s in JobStatus], refresh=5000
    )
