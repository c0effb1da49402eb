"""Dramatiq middleware that writes every job transition to the job store.

queued -> running -> succeeded | failed (a retry is scheduled) | dead | cancelled
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import dramatiq
from dramatiq.errors import ActorNotFound
from dramatiq.middleware import Middleware, SkipMessage

from bus import settings
from bus.errors import JobCancelled, StoreUnavailable, describe
from bus.jobstore import JobStore, shared, unavailable
from contracts import JobError, JobStatus
from workers.actors import CONTINUED, started, take_result

log = logging.getLogger(__name__)


class JobLifecycle(Middleware):
    @property
    def store(self) -> JobStore:
        return shared()

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        command: Any = message.args[0] if len(message.args) == 1 else {"args": list(message.args)}
        try:
            attempts = self.store.start(
                job_id=message.message_id,
                type=message.actor_name,
                queue=message.queue_name.removesuffix(".DQ"),
                command=command,
                options={k: v for k, v in message.options.items() if k in _KEPT_OPTIONS},
            )
        except Exception as err:
            if unavailable(err):
                raise StoreUnavailable(f"job store unavailable: {err.__class__.__name__}") from None
            raise
        if attempts is None:
            # finished, dead or cancelled already: a redelivery or a cancelled job
            log.info("skipping message %s: its job is already over", message.message_id)
            raise SkipMessage()
        # only a first delivery can be a stale tick: a retry or a continuation (a polling
        # SageMaker job) of a scheduled command must finish what it started
        stale = _staleness(message.options.get("scheduled_at")) if attempts == 1 else None
        if stale is not None:
            self.store.finish(message.message_id, JobStatus.CANCELLED, error=JobError(type="StaleTick", message=stale))
            raise SkipMessage()
        started(message.message_id, attempts)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.Message,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if isinstance(exception, StoreUnavailable):
            return  # nothing was recorded as started; the retry will record it
        if exception is None:
            result = take_result(message.message_id)
            if result is CONTINUED:
                return  # not over: the handler re-enqueued its message with a delay
            self.store.finish(message.message_id, JobStatus.SUCCEEDED, result=result)
            return
        if isinstance(exception, JobCancelled):
            # the job stopped at a progress report because its cancel was requested
            self.store.finish(message.message_id, JobStatus.CANCELLED, error=CANCELLED)
            return
        if isinstance(exception, ActorNotFound):
            # no actor for this type on this queue: park it in the dead-letter queue
            message.fail()
        status = JobStatus.DEAD if message.failed else JobStatus.FAILED
        self.store.finish(message.message_id, status, error=describe(exception))


CANCELLED = JobError(type="JobCancelled", message="cancelled at the user's request while it ran")

#: message options worth keeping with the job (our metadata, not broker internals)
_KEPT_OPTIONS = frozenset({"schema_version", "idempotency_key", "trace_id", "scheduled_at", "schedule"})


def _staleness(scheduled_at: str | None) -> str | None:
    """Why a scheduled command is too old to run, or None. A backlog of stale ticks is dropped."""
    if not scheduled_at:
        return None
    try:
        slot = dt.datetime.fromisoformat(scheduled_at)
    except ValueError:
        return None
    age = (dt.datetime.now(dt.UTC) - slot).total_seconds()
    limit = settings.get().tick_staleness_s
    if age <= limit:
        return None
    return f"slot {scheduled_at} is {age:.0f} s old, over TICK_STALENESS_S={limit:.0f}"
