"""The lifecycle of one delivery, run inside the actor call: start, run, record the outcome.

queued -> running -> succeeded | failed (a retry is scheduled) | dead | cancelled

Why inside the actor call and not in middleware hooks: Dramatiq's worker (``process_message``)
runs ``after_process_message`` through ``Broker.emit_after``, which logs any exception a hook
raises and goes on, and the message is then acknowledged all the same. A finish that failed to
be written there was lost with its message (jobs stuck ``running`` after a Postgres failover).
Here the actor wrapper (workers/actors.py) calls ``deliver``, which

1. records the start (``JobStore.start``): the attempt this delivery runs, handed to the
   handler's ``JobContext`` and to every later write of this delivery. A job already over, or
   running under another attempt (a duplicate message), is not run; the message is acknowledged
   (if that attempt is lost, the reconciler runs the job again: workers/reconciler.py);
2. runs the handler while the process renews the job's lease (workers/leases.py);
3. records the outcome, keyed by job and attempt, durably (the group commit returns after the
   fsync'd commit), and only then returns or raises: Dramatiq acknowledges the message after the
   outcome is in Postgres. For a failure it first asks ``Retries.gives_up`` (bus/broker.py), so the
   recorded ``failed`` or ``dead`` is exactly what Retries then does with the message;
4. when the job store is unreachable at any step, raises ``StoreUnavailable`` instead: Dramatiq's
   failure path runs Retries, which sends the message again after a backoff without using up
   ``max_retries``. An outcome that could not be recorded travels with that message (option
   ``outcome``): its next delivery records it without running the handler again, then does what
   the outcome calls for (schedules a failed attempt's retry, dead-letters a dead job's message).

So a message is acknowledged once its outcome is durable, or once Retries has handed the broker a
copy of the message that carries the outcome. If that copy is lost too (the broker is down as
well, or restarts empty), the job stays ``running`` only until its lease runs out: then the
reconciler runs it again. The same happens when Postgres stays away longer than LEASE_S: the job
may then run again before the late outcome arrives, which is dropped (a job still succeeds once).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import dramatiq
import msgspec

from bus import presence, settings
from bus.broker import PENDING_OUTCOME, retries_of
from bus.errors import Continue, JobCancelled, PermanentError, StoreUnavailable, describe
from bus.groupcommit import Started
from bus.jobstore import JobStore, shared, unavailable
from contracts import Job, JobError, JobStatus
from workers.leases import leases

log = logging.getLogger(__name__)

#: the message option naming the attempt a continuation's message continues (bus.errors.Continue)
CONTINUES = "continues"


class Outcome(msgspec.Struct, kw_only=True):
    """How an attempt ended, as recorded (or as it travels in a message until it is recorded)."""

    attempt: int
    status: JobStatus
    result: Any = None
    error: JobError | None = None


class RecordedFailure(Exception):
    """A failed attempt whose outcome was recorded late (the store was down): its retry is due now."""


def deliver(message: dramatiq.Message, work: Callable[[int], Any]) -> None:
    """Run one delivery of ``message``; ``work(attempt)`` runs the handler and returns its result."""
    store = shared()
    pending = message.options.get(PENDING_OUTCOME)
    if pending is not None:
        _land(store, message, msgspec.convert(pending, Outcome))
        return
    started = _start(store, message)
    if started.attempt is None and started.status == JobStatus.RUNNING:
        started = _take_over(store, message) or started
    if started.attempt is None:
        if started.status == JobStatus.RUNNING:
            log.info("skipping message %s: its job is running under another attempt", message.message_id)
        else:
            log.info("skipping message %s: its job is already over", message.message_id)
        return
    attempt = started.attempt
    # only a first delivery can be a stale tick: a retry or a continuation (a polling
    # SageMaker job) of a scheduled command must finish what it started
    stale = _staleness(message.options.get("scheduled_at")) if attempt == 1 else None
    if stale is not None:
        error = JobError(type="StaleTick", message=stale)
        _record(store, message, Outcome(attempt=attempt, status=JobStatus.CANCELLED, error=error))
        return
    held = leases()
    held.hold(message.message_id, attempt)
    try:
        try:
            result = msgspec.to_builtins(work(attempt))
        except Continue as later:
            _continue(store, message, attempt, later)
            return
        except JobCancelled:
            # the job stopped at a progress report because its cancel was requested: recorded
            # cancelled, and Retries acknowledges the message (bus/broker.py)
            _record(store, message, Outcome(attempt=attempt, status=JobStatus.CANCELLED, error=CANCELLED))
            raise
        except BaseException as err:  # Dramatiq's interrupts (time limit, shutdown) end an attempt too
            broker = dramatiq.get_broker()
            status = JobStatus.DEAD if retries_of(broker).gives_up(broker, message, err) else JobStatus.FAILED
            _record(store, message, Outcome(attempt=attempt, status=status, error=describe(err)))
            raise
        _record(store, message, Outcome(attempt=attempt, status=JobStatus.SUCCEEDED, result=result))
    finally:
        held.release(message.message_id, attempt)


def _take_over(store: JobStore, message: dramatiq.Message) -> Started | None:
    """The message of a job running under an attempt no live worker holds: a new attempt, now.

    The broker sends a message again when the worker that held it died (on Redis the ticker
    requeues it at the head of its queue once the worker's heartbeat is HEARTBEAT_TIMEOUT_MS old;
    on RabbitMQ when its connection drops). Waiting for the lease to run out would put the re-run
    behind the reconciler, at the tail of the queue. So this delivery takes the job over once no
    worker that beat within ``_live_window_s`` lists it (bus/presence.py), waiting for that a
    little longer than the window; a holder still beating then is alive, and the message is
    skipped (the reconciler covers a later death). A live attempt is never run twice, and the old
    attempt's late writes are keyed by its number and change nothing."""
    job_id = message.message_id
    if presence.local_deliveries(job_id) > 1:
        return None  # another thread of this process runs it
    window_s = _live_window_s()
    deadline = time.monotonic() + window_s + presence.BEAT_S
    try:
        while True:
            running = store.running_attempt(job_id)
            if running is None:
                return None  # it ended meanwhile
            holder, renewed_s_ago = running
            # a live holder renews its lease every LEASE_S/3 and lists the job in its presence entry
            # (which may lag a fresh start): both must have gone quiet
            if renewed_s_ago > window_s:
                listed = presence.listed_jobs(
                    store.redis, store.namespace, fresh_s=window_s, exclude=presence.local_id()
                )
                if job_id not in listed:
                    break
            if time.monotonic() > deadline:
                return None
            time.sleep(0.5)
        s = settings.get()
        error = JobError(
            type="WorkerLost",
            message=f"attempt {holder} was lost: no live worker runs it; lost more than MAX_RETRIES={s.max_retries}"
            " times",
        )
        job = store.reclaim(job_id, holder, max_losses=s.max_retries, error=error)
    except Exception as err:
        if unavailable(err):
            return None  # cannot tell: leave it to the reconciler
        raise
    if job is None or job.status != JobStatus.QUEUED:
        return None  # another delivery took it over first, or it was lost too often (now dead)
    log.info("job %s: attempt %d has no live worker; this delivery runs it again", job_id, holder)
    return _start(store, message)


def _live_window_s() -> float:
    """How recently a worker must have beaten to count as alive: the broker's heartbeat timeout,
    and at least three presence beats (one late beat is not a death)."""
    s = settings.get()
    return max(s.heartbeat_timeout_ms / 1000, 3 * presence.BEAT_S, s.lease_s / 3 + presence.BEAT_S)


def _start(store: JobStore, message: dramatiq.Message, continues: int | None = None) -> Started:
    command: Any = message.args[0] if len(message.args) == 1 else {"args": list(message.args)}
    try:
        return store.start(
            job_id=message.message_id,
            type=message.actor_name,
            queue=message.queue_name.removesuffix(".DQ"),
            command=command,
            options={k: v for k, v in message.options.items() if k in _KEPT_OPTIONS},
            continues=message.options.get(CONTINUES) if continues is None else continues,
        )
    except Exception as err:
        if unavailable(err):
            raise StoreUnavailable(f"job store unavailable: {err.__class__.__name__}") from None
        raise


def _record(store: JobStore, message: dramatiq.Message, outcome: Outcome) -> Job | None:
    """Write ``outcome`` (durable when this returns); the job, or None when that attempt no longer
    runs. A store outage raises ``StoreUnavailable`` with the outcome put on the message."""
    try:
        return store.finish(
            message.message_id, outcome.status, attempt=outcome.attempt, result=outcome.result, error=outcome.error
        )
    except Exception as err:
        if unavailable(err):
            message.options[PENDING_OUTCOME] = msgspec.to_builtins(outcome)
            log.warning(
                "job %s: attempt %d ended %s, not recorded (job store unavailable: %s); the outcome is kept "
                "with the message, which comes back",
                message.message_id,
                outcome.attempt,
                outcome.status,
                err.__class__.__name__,
            )
            raise StoreUnavailable(f"job store unavailable: {err.__class__.__name__}") from None
        if outcome.status != JobStatus.SUCCEEDED:
            raise
        # Postgres refused the result itself (e.g. text jsonb cannot hold): it will refuse it every
        # time, so the job ends dead saying why, instead of running again
        refused = describe(err)
        error = JobError(type=refused.type, message=f"the job's result could not be stored: {refused.message}")
        _record(store, message, Outcome(attempt=outcome.attempt, status=JobStatus.DEAD, error=error))
        raise PermanentError(error.message) from None


def _land(store: JobStore, message: dramatiq.Message, outcome: Outcome) -> None:
    """Record an outcome that came back with its message, then do what it calls for."""
    recorded = _record(store, message, outcome) is not None or _was_recorded(store, message.message_id, outcome)
    del message.options[PENDING_OUTCOME]
    if not recorded:
        log.info(
            "job %s: the outcome of attempt %d is dropped, a later attempt holds the job",
            message.message_id,
            outcome.attempt,
        )
        return
    log.info("job %s: the outcome of attempt %d is recorded now", message.message_id, outcome.attempt)
    reason = outcome.error.message if outcome.error else str(outcome.status)
    if outcome.status == JobStatus.FAILED:
        raise RecordedFailure(reason)  # Retries schedules the retry the attempt earned
    if outcome.status == JobStatus.DEAD:
        raise PermanentError(reason)  # Retries dead-letters the message, as the attempt would have


def _was_recorded(store: JobStore, job_id: str, outcome: Outcome) -> bool:
    """Whether an earlier write of this outcome committed though its answer was lost."""
    try:
        job = store.get(job_id)
    except Exception as err:
        if unavailable(err):
            raise StoreUnavailable(f"job store unavailable: {err.__class__.__name__}") from None
        raise
    return job is not None and job.attempts == outcome.attempt and job.status == outcome.status


def _continue(store: JobStore, message: dramatiq.Message, attempt: int, later: Continue) -> None:
    """The job is not over: hold it over the delay and send its message again, naming this attempt."""
    try:
        holds = store.continue_later(message.message_id, attempt, later.delay_ms)
    except Exception as err:
        if unavailable(err):
            # redelivered by Retries, this message takes over the attempt it now names
            message.options[CONTINUES] = attempt
            raise StoreUnavailable(f"job store unavailable: {err.__class__.__name__}") from None
        raise
    if not holds:
        log.info("job %s moved on during attempt %d: its continuation is dropped", message.message_id, attempt)
        return
    # the same message (same id, same command) comes back after the delay
    dramatiq.get_broker().enqueue(message.copy(options={CONTINUES: attempt}), delay=later.delay_ms)


CANCELLED = JobError(type="JobCancelled", message="cancelled at the user's request while it ran")

#: message options worth keeping with the job (our metadata, not broker internals)
_KEPT_OPTIONS = frozenset(
    # caused_by, rule, chain_depth: a follow-up's origin (workers/rules/follow_up.py), kept for a job
    # first seen as a message too (a producer may publish one straight onto the bus)
    {"schema_version", "idempotency_key", "trace_id", "scheduled_at", "schedule", "caused_by", "rule", "chain_depth"}
)


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
