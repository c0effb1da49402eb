"""A request body that stops arriving is cut: 408 and the connection closed.

uvicorn waits for a body as long as the client keeps the connection open, so a client sending a
byte now and then (a slow-body "slowloris") would hold a connection, and the request's database
connection in ``PUT /v1/tables/.../rows``, for ever. Here every read of a body that is not complete
yet is bounded by BODY_READ_TIMEOUT_S, the longest silence between two chunks (like nginx's
``client_body_timeout``). A request that answers before reading its whole body is unaffected, and
so is the wait for a disconnect once the body is in (a streamed download listens for it).

What uvicorn cannot bound is a client that never finishes its headers: no ASGI app sees that
request. The web process is meant to run behind a proxy that does (README, Security).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingress.errors import ApiError


class ReadTimeout:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                # a deadline on this task, not wait_for's task per read: a body that is in already
                # (nearly every request's) costs a timer set and cancelled
                async with asyncio.timeout(self.seconds):
                    message = await receive()
            except TimeoutError:
                raise ApiError(
                    408,
                    "request_timeout",
                    {"message": f"the request body stopped arriving: nothing for {self.seconds:g} s"},
                    # the rest of the body may still come: this connection cannot carry another request
                    {"Connection": "close"},
                ) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)
