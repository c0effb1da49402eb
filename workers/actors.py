"""Turning a handler function into the Dramatiq actor of a command type.

A pool module writes::

    @handles(gooddata.WorkspaceCreate)
    def create(command: gooddata.WorkspaceCreate, job: JobContext) -> dict: ...

The actor is named by the command type and listens on the command's queue (from
the routing table), so a message built by any producer reaches it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import dramatiq
import msgspec
from dramatiq.middleware import CurrentMessage

from bus.errors import Continue, JobCancelled, PermanentError
from bus.jobstore import JobStore, shared
from contracts import CommandBase, InvalidCommand, convert, route, type_of

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
        if self._store.progress(self.id, percent, message):
            raise JobCancelled(f"job {self.id}: cancel requested")


# The handler's result travels to the lifecycle middleware through the worker
# thread, not as the actor's return value (which Dramatiq would only keep with
# its own results backend, and warn about otherwise).
_outcome = threading.local()


#: what a handler that raised ``Continue`` leaves as its result: the lifecycle keeps the job running
CONTINUED = object()


def started(job_id: str, attempts: int) -> None:
    """Called by the lifecycle middleware once the job is recorded as running."""
    _outcome.attempt = (job_id, attempts)


def take_result(job_id: str) -> Any:
    """The result the handler of ``job_id`` returned on this thread (once)."""
    stored = getattr(_outcome, "value", None)
    _outcome.value = None
    return stored[1] if stored and stored[0] == job_id else None


def handles(command_cls: type[C], **options: Any) -> Callable[[Callable[[C, JobContext], Any]], dramatiq.Actor]:
    tag = command_cls.__struct_config__.tag
    queue = route(command_cls).queue

    def register(handler: Callable[[C, JobContext], Any]) -> dramatiq.Actor:
        def run(*args: Any, **kwargs: Any) -> Any:
            if len(args) != 1 or kwargs:
                raise PermanentError("a message carries exactly one argument, the command: args=[command], kwargs={}")
            try:
                command = convert(args[0], "$.args[0]")
            except InvalidCommand as err:
                raise PermanentError(f"invalid command: {err.message} at {err.path}") from None
            if not isinstance(command, command_cls):
                raise PermanentError(f"actor {tag!r} got a command of type {type_of(command)!r}")
            message = CurrentMessage.get_current_message()
            job_id = message.message_id if message else ""
            recorded = getattr(_outcome, "attempt", None)
            # attempts across every delivery, manual retries included, as the job store counts them
            attempt = recorded[1] if recorded and recorded[0] == job_id else 1
            job = JobContext(job_id, attempt, shared() if message else None, message.options if message else None)
            try:
                result = handler(command, job)
            except Continue as later:
                if message is None:
                    raise
                # the same message (same id, same command) comes back after the delay
                dramatiq.get_broker().enqueue(message.copy(), delay=later.delay_ms)
                _outcome.value = (job.id, CONTINUED)
                return
            _outcome.value = (job.id, msgspec.to_builtins(result))

        run.__name__ = run.__qualname__ = tag.replace(".", "_")
        run.__doc__ = handler.__doc__
        # throws: neither is an unexpected failure to log with its trace (and neither is retried)
        throws = (PermanentError, JobCancelled)
        return dramatiq.actor(run, actor_name=tag, queue_name=queue, throws=throws, **options)

    return register
