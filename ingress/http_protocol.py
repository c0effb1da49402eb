"""uvicorn's h11 protocol with a deadline for each request's head, the Procfile's ``--http``.

uvicorn bounds a request head's size but not its time: a client that connects and sends its
request line and headers a little at a time (slowloris) holds the connection, and a task, for
ever (uvicorn's keep-alive timer is cancelled by every byte received). Here each request's head
must be complete within ``--timeout-keep-alive`` seconds (5 by default) of the connection opening,
or of the previous response on a kept-alive connection; otherwise the connection is closed. A
body that stalls is cut by ingress/read_timeout.py.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol


class H11WithHeadTimeout(H11Protocol):
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and self._waiting_for_a_response():
            self._disarm()  # the head is in: the request runs (its body has a timeout of its own)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # the next request's head on this kept-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _waiting_for_a_response(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.timeout_keep_alive, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self._waiting_for_a_response() and not self.transport.is_closing():
            self.transport.close()
