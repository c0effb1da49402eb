"""Turning a handler function into the Dramatiq actor of a command type.

A pool module writes::

    @handles(gooddata.WorkspaceCreate)
    def create(command: gooddata.WorkspaceCreate, job: JobContext) -> dict: ...

The actor is named by the command type and listens on the command's queue (from
the routing table), so a message built by any producer reaches it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import dramatiq
from dramatiq.middleware import CurrentMessage

from bus.errors import JobCancelled, PermanentError, StoreUnavailable
from bus.jobstore import JobStore, shared
from contracts import CommandBase, InvalidCommand, convert, route, type_of
from workers.lifecycle import deliver

C = TypeVar("C", bound=CommandBase)


class JobContext:
    """What a handler may know and say about the job it runs."""

    #: a handler may report progress in a tight loop; the store sees at most this rate
    MIN_PROGRESS_INTERVAL_S = 0.25

    def __init__(
        self, job_id: str, attempt: int, store: JobStore | None, options: dict[str, Any] | None = None
    ) -> None:
        self.id = job_id
        self.attempt = attempt
        self._store = store
        #: the message's metadata: schema_version, idempotency_key, trace_id, scheduled_at, schedule
        self.options = options or {}
        self._last_progress = 0.0

    @property
    def schedule(self) -> str | None:
        """The schedule that emitted this job, if any."""
        return self.options.get("schedule")

    def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress. Raises ``JobCancelled`` when the job's cancel has been requested: a
        progress report is where a running job can stop cleanly (its ``finally`` blocks run)."""
        now = time.monotonic()
        if self._store is None or now - self._last_progress < self.MIN_PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        if self._store.progress(self.id, self.attempt, percent, message):
            raise JobCancelled(f"job {self.id}: cancel requested")


def handles(command_cls: type[C], **options: Any) -> Callable[[Callable[[C, JobContext], Any]], dramatiq.Actor]:
    tag = command_cls.__struct_config__.tag
    queue = route(command_cls).queue

    def register(handler: Callable[[C, JobContext], Any]) -> dramatiq.Actor:
        def command_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> C:
            if len(args) != 1 or kwargs:
                raise PermanentError("a message carries exactly one argument, the command: args=[command], kwargs={}")
            try:
                command = convert(args[0], "$.args[0]")
            except InvalidCommand as err:
                raise PermanentError(f"invalid command: {err.message} at {err.path}") from None
            if not isinstance(command, command_cls):
                raise PermanentError(f"actor {tag!r} got a command of type {type_of(command)!r}")
            return command

        def run(*args: Any, **kwargs: Any) -> Any:
            message = CurrentMessage.get_current_message()
            if message is None:  # called directly (a test, a shell): no job to record
                return handler(command_of(args, kwargs), JobContext("", 1, None))
            # the job lifecycle (workers/lifecycle.py) records the start, hands the attempt to the
            # handler's context, and records the outcome before Dramatiq acknowledges the message;
            # the command is checked once the job is recorded, so a malformed message ends dead
            deliver(
                message,
                lambda attempt: handler(
                    command_of(args, kwargs), JobContext(message.message_id, attempt, shared(), message.options)
                ),
            )

        run.__name__ = run.__qualname__ = tag.replace(".", "_")
        run.__doc__ = handler.__doc__
        # all "expected": Dramatiq logs them in a line, without a traceback (a store outage would
        # otherwise print one per message); Retries handles each its own way (bus/broker.py), and
        # neither a permanent error nor a cancel is retried
        throws = (PermanentError, StoreUnavailable, JobCancelled)
        return dramatiq.actor(run, actor_name=tag, queue_name=queue, throws=throws, **options)

    return register
