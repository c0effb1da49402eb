"""GET /v1/rejected-messages: the poison messages workers quarantined, newest first (bus/rejections.py)."""

from __future__ import annotations

import anyio
import redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus import broker_adapter
from contracts import QUEUES
from ingress.errors import dependency_down, invalid, json_response
from ingress.query import read_limit, reject_unknown
from ingress.state import State

MAX_LIMIT = 500


async def rejected_messages(request: Request) -> Response:
    q = request.query_params
    reject_unknown(q, {"queue", "limit"})
    queue = q.get("queue") or None
    if queue is not None and queue not in QUEUES:
        raise invalid("queue", f"one of {', '.join(QUEUES)}")
    limit = read_limit(q, 50, MAX_LIMIT)
    state: State = request.app.state.switchyard
    queues = (queue,) if queue else QUEUES
    try:
        items = await anyio.to_thread.run_sync(
            broker_adapter.rejected, state.broker, queues, limit, limiter=state.dispatcher.limiter
        )
    except (redis.ConnectionError, redis.TimeoutError):
        raise dependency_down("broker") from None
    return json_response({"items": items})


ROUTES = [Route("/v1/rejected-messages", rejected_messages, methods=["GET"])]
