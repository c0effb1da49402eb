"""The Dramatiq broker every process shares: Redis by default, RabbitMQ for amqp:// URLs.

Dramatiq and the broker are the distributed engine; this module only picks the
broker and the middleware stack (worker processes add theirs: workers/worker_broker.py):

- Retries: exponential backoff; permanent errors (``bus.errors.permanent``) dead-lettered at
  once; a job-store outage retried without counting against ``max_retries``; a cancelled job
  neither retried nor dead-lettered. The actor wrapper (workers/lifecycle.py) asks ``gives_up``
  before it records a failure, so the job's status (``failed`` or ``dead``) and what Retries
  then does always agree.
- Presence: lists the worker process, its queues and its in-flight jobs in Redis for
  the dashboard and the reconciler (bus/presence.py).
- Redis: a consumer that quarantines poison messages instead of stranding its batch
  (bus/quarantine.py), and a short heartbeat timeout, so the ticker puts the messages of a
  worker killed mid-job back at the head of their queue in seconds (bus/broker_adapter.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import dramatiq
import redis
from dramatiq.common import compute_backoff
from dramatiq.middleware import AgeLimit, CurrentMessage, ShutdownNotifications, TimeLimit, retries

from bus import settings
from bus.errors import JobCancelled, StoreUnavailable, permanent

#: the message option under which an outcome that could not be recorded travels (workers/lifecycle.py)
PENDING_OUTCOME = "outcome"


class Retries(retries.Retries):
    """Dramatiq's retries, except that permanent errors are never retried, a job-store outage
    never uses them up, and a cancelled job is neither retried nor dead-lettered: its message is
    acknowledged (the lifecycle records ``cancelled``)."""

    def gives_up(self, broker: dramatiq.Broker, message: dramatiq.Message, exception: BaseException) -> bool:
        """Whether ``after_process_message`` will dead-letter this failure instead of retrying it:
        the same test as Dramatiq's (``throws``, then the ``retries`` count against ``max_retries``)
        after ``permanent``. A store outage is never given up on."""
        if isinstance(exception, (StoreUnavailable, JobCancelled)):
            return False
        if permanent(exception):
            return True
        actor = broker.get_actor(message.actor_name)
        throws = message.options.get("throws") or actor.options.get("throws")
        if throws and isinstance(exception, throws):
            return True
        max_retries = message.options.get("max_retries", actor.options.get("max_retries", self.max_retries))
        return max_retries is not None and message.options.get("retries", 0) >= max_retries

    def after_process_message(self, broker, message, *, result=None, exception=None):  # type: ignore[no-untyped-def]
        if isinstance(exception, JobCancelled):
            return
        if isinstance(exception, StoreUnavailable):
            outages = message.options["store_outages"] = message.options.get("store_outages", 0) + 1
            _, delay = compute_backoff(outages, factor=self.min_backoff, max_backoff=self.max_backoff)
            if PENDING_OUTCOME in message.options:
                # a finish waiting to be recorded comes back well within its lease, so it usually
                # lands before the reconciler would give the job to another attempt
                delay = min(delay, int(settings.get().lease_s * 1000 / 3))
            broker.enqueue(message, delay=delay)
            return
        if exception is not None and permanent(exception):
            self.logger.info("Not retrying message %r: %s recurs on a retry.", message.message_id, _name(exception))
            message.fail()
            return
        super().after_process_message(broker, message, result=result, exception=exception)


def _name(exception: BaseException) -> str:
    return exception.__class__.__name__


def retries_of(broker: dramatiq.Broker) -> Retries:
    """The broker's Retries middleware (every broker ``build`` makes has one)."""
    return next(m for m in broker.middleware if isinstance(m, Retries))


def build(*, middleware: Sequence[dramatiq.Middleware] = ()) -> dramatiq.Broker:
    """A broker with the shared middleware; ``middleware`` goes before Retries."""
    s = settings.get()
    stack: list[dramatiq.Middleware] = [
        AgeLimit(),
        TimeLimit(time_limit=s.job_time_limit_ms),
        ShutdownNotifications(),
        CurrentMessage(),
    ]
    stack += middleware
    stack.append(Retries(max_retries=s.max_retries, min_backoff=s.min_backoff_ms, max_backoff=s.max_backoff_ms))

    url = s.broker
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=stack, confirm_delivery=True)
    from bus.quarantine import QuarantiningRedisBroker

    return QuarantiningRedisBroker(
        client=redis.Redis.from_url(url, socket_connect_timeout=max(1.0, s.redis_timeout), socket_timeout=10),
        middleware=stack,
        namespace=s.broker_namespace,
        heartbeat_timeout=s.heartbeat_timeout_ms,
        maintenance_chance=s.maintenance_chance,
    )
