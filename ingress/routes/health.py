"""/healthz (the process is alive) and /readyz (Postgres, Redis and the broker answer)."""

from __future__ import annotations

import asyncio

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus import broker_adapter as queues
from ingress.errors import json_response
from ingress.state import State

CHECK_TIMEOUT_S = 2.0


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def _postgres(state: State) -> None:
    async with state.pool.connection(timeout=CHECK_TIMEOUT_S) as conn:
        await conn.execute("SELECT 1")


async def _redis(state: State) -> None:
    await state.redis.ping()


async def _broker(state: State) -> None:
    await anyio.to_thread.run_sync(queues.ping, state.broker, limiter=state.dispatcher.limiter)


async def checks(state: State) -> dict[str, str]:
    """Each dependency -> "ok" or "down (<error class>)"; also shown on the dashboard."""
    names = ("postgres", "redis", "broker")

    async def check(probe) -> str:  # type: ignore[no-untyped-def]
        try:
            await asyncio.wait_for(probe(state), CHECK_TIMEOUT_S)
            return "ok"
        except Exception as err:  # noqa: BLE001 - any failure means not ready
            return f"down ({err.__class__.__name__})"

    results = await asyncio.gather(*(check(p) for p in (_postgres, _redis, _broker)))
    return dict(zip(names, results, strict=True))


async def readyz(request: Request) -> Response:
    state: State = request.app.state.switchyard
    checks_ = await checks(state)
    if all(v == "ok" for v in checks_.values()):
        return json_response({"status": "ready", "checks": checks_})
    return json_response({"error": "unavailable", "detail": {"checks": checks_}}, 503, {"Retry-After": "1"})


ROUTES = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
