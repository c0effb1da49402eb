"""uvicorn's httptools protocol with a deadline and a size cap for each request's head, the
Procfile's ``--http`` (with ``--loop uvloop``: the C parser and event loop cost a request a third
of what h11 and asyncio's loop do).

uvicorn bounds a request head's time with neither of its protocols, and its size only with h11: a
client that connects and sends its request line and headers a little at a time (slowloris) holds
the connection, and a task, for ever (uvicorn's keep-alive timer is cancelled by every byte
received), and one that sends an endless header grows the process's memory. Here each request's
head must be complete within ``--timeout-keep-alive`` seconds (5 by default) of the connection
opening, or of the previous response on a kept-alive connection, or the connection is closed; and
a head still incomplete after ``MAX_HEAD_BYTES`` (h11's bound) is answered 431 and the connection
closed. A body that stalls is cut by ingress/read_timeout.py.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

#: the largest request head (request line and headers) read, as uvicorn's h11 protocol bounds it
MAX_HEAD_BYTES = 16 * 1024
_TOO_LARGE = b"request head too large"
_TOO_LARGE_RESPONSE = b"".join(
    [
        STATUS_LINE[431],
        b"content-type: text/plain; charset=utf-8\r\n",
        b"content-length: %d\r\n" % len(_TOO_LARGE),
        b"connection: close\r\n\r\n",
        _TOO_LARGE,
    ]
)


class HttpToolsWithHeadLimits(HttpToolsProtocol):
    _head_timer: asyncio.TimerHandle | None = None
    #: bytes received of the request head under way; None when no head is (a request runs)
    _head_bytes: int | None = None
    #: request heads begun on this connection
    _heads_begun = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        began, in_head = self._heads_begun, self._head_bytes is not None
        super().data_received(data)
        # only data that is all head counts: it arrived inside a head that is still incomplete. Data in
        # which a head began may hold the end of the previous request too, so it is not counted: the
        # bound is overshot by one read at most, and never reached by a request that fits
        if in_head and began == self._heads_begun and self._head_bytes is not None:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                self.transport.write(_TOO_LARGE_RESPONSE)
                self.transport.close()
        if self._head_timer is not None and self._waiting_for_a_response():
            self._disarm()  # the head is in: the request runs (its body has a timeout of its own)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._heads_begun += 1
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # starts the next pipelined request, if one is in whole
        if not self._waiting_for_a_response() and not self.transport.is_closing():
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
