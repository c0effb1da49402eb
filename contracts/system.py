"""Diagnostic commands served by the ``system`` pool.

Operators use them to check a deployment end to end (is a pool draining, do
retries and the dead-letter path work, does progress reach the API) without
touching a remote service.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from contracts.base import CommandBase


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


COMMANDS = (Noop, Sleep, Fail)
