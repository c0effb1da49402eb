"""Baseline of scenario (c): the smallest Starlette app, ``uvicorn bench.hello_app:app``.

It answers the same ``POST`` that ``/v1/commands`` gets (any path, body ignored) with
a small JSON, so the difference to our app is only what our app does per request.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world"})


app = Starlette(routes=[Route("/{path:path}", hello, methods=["GET", "POST"])])
