"""Schedules: name, cron, zone, next fire times in the schedule's zone, enable and disable."""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ingress.routes.schedules import masked
from ingress.ui.web import SECURITY_HEADERS, error_page, page, render
from workers import schedules

PAGE_SIZE = 100


@page
async def schedule_list(request: Request) -> Response:
    after = request.query_params.get("after", "")[:200]
    rows = await anyio.to_thread.run_sync(schedules.page, after, PAGE_SIZE)
    items = [masked(schedules.view(r)) for r in rows]
    next_after = items[-1]["name"] if len(items) == PAGE_SIZE else None
    return render(request, "schedules.html", items=items, next_after=next_after)


async def _set_enabled(request: Request, enabled: bool) -> Response:
    name = request.path_params["name"]
    row = await anyio.to_thread.run_sync(schedules.patch, name, {"enabled": enabled})
    if row is None:
        return error_page(request, 404, "Not found", "There is no such schedule.")
    return RedirectResponse("/ui/schedules", 303, SECURITY_HEADERS)


@page
async def enable(request: Request) -> Response:
    return await _set_enabled(request, True)


@page
async def disable(request: Request) -> Response:
    return await _set_enabled(request, False)
