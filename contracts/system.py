"""Diagnostic commands served by the ``system`` pool.

Operators use them to check a deployment end to end (is a pool draining, do
retries and the dead-letter path work, does progress reach the API) without
touching a remote service.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from contracts.base import CommandBase, Identifier


class Noop(CommandBase, tag="system.noop"):
    """Does nothing and succeeds: the cheapest round trip through the bus."""

    echo: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None


class Sleep(CommandBase, tag="system.sleep"):
    """Sleeps, reporting progress in ``steps`` increments."""

    seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)]
    steps: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10


class Fail(CommandBase, tag="system.fail"):
    """Raises an error: permanent (no retry, job ends ``dead``) or transient (retried)."""

    message: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)] = "requested failure"
    permanent: bool = False
    #: transient failures stop after this many attempts, so a retry path can be drilled to success
    succeed_on_attempt: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None


#: a host name or IPv4 address in ASCII (an international name as its xn-- form; an IPv6 address by a
#: name), no user:password@ before it (credentials in a URL would be stored with the job), an optional
#: port, and no space or control character anywhere (spelled out: Python's \s and JSON Schema's differ)
HttpUrl = Annotated[
    str,
    msgspec.Meta(
        max_length=2048,
        pattern=r"^https?://[A-Za-z0-9._~%!$&'()*+,;=-]+(?::[0-9]{1,5})?(?:[/?#][^\x00-\x20\x7f]*)?$",
    ),
]
StatusCode = Annotated[int, msgspec.Meta(ge=100, le=599)]


class Http(CommandBase, tag="system.http"):
    """Calls another service over HTTP through the safe outbound client (bus/outbound.py: never
    our own network). A status in ``expect_status`` (default: any 2xx) succeeds; a 4xx otherwise
    is permanent (the job ends dead), a 5xx, 429 or a connection error is retried."""

    url: HttpUrl
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    #: sent as JSON (``POST``, ``PUT``, ``PATCH``)
    body: Any = None
    expect_status: Annotated[list[StatusCode], msgspec.Meta(min_length=1, max_length=20)] | None = None
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=300)] = 30.0

    def __post_init__(self) -> None:
        if self.body is not None and self.method not in ("POST", "PUT", "PATCH"):
            raise ValueError(f"body: a {self.method} request sends no body (POST, PUT or PATCH do)")


class Notify(CommandBase, tag="system.notify"):
    """Sends rule ``rule``'s notification about the job ``job_id`` ending ``status``. The rule
    processor submits it; the destination (a webhook URL is a secret) is read from the rule when it
    is sent, so no job record holds it. A notification's own end triggers no rule."""

    rule: Identifier
    job_id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    status: Literal["succeeded", "failed", "dead", "cancelled"]


COMMANDS = (Noop, Sleep, Fail, Http, Notify)
