"""The Dramatiq broker every process shares: Redis by default, RabbitMQ for amqp:// URLs.

Dramatiq and the broker are the distributed engine; this module only picks the
broker and the middleware stack (worker processes add theirs: workers/worker_broker.py):

- Retries: exponential backoff, permanent errors not retried (the actors' ``throws``),
  a store outage retried without counting against ``max_retries``, a cancelled job not at all.
- JobLifecycle: writes every job transition (after Retries has decided, so it can
  tell ``failed`` from ``dead``).
- Presence: lists the worker process, its queues and its in-flight jobs in Redis for
  the dashboard (bus/presence.py).
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
from bus.errors import JobCancelled, StoreUnavailable


class Retries(retries.Retries):
    """Dramatiq's retries, except that a job-store outage never uses them up, and a cancelled
    job is neither retried nor dead-lettered: its message is acknowledged (the lifecycle records
    ``cancelled``)."""

    def after_process_message(self, broker, message, *, result=None, exception=None):  # type: ignore[no-untyped-def]
        if isinstance(exception, JobCancelled):
            return
        if isinstance(exception, StoreUnavailable):
            outages = message.options["store_outages"] = message.options.get("store_outages", 0) + 1
            _, delay = compute_backoff(outages, factor=self.min_backoff, max_backoff=self.max_backoff)
            broker.enqueue(message, delay=delay)
            return
        super().after_process_message(broker, message, result=result, exception=exception)


def build(*, middleware: Sequence[dramatiq.Middleware] = ()) -> dramatiq.Broker:
    """A broker with the shared middleware; ``middleware`` goes before Retries (which must
    decide last, so a lifecycle middleware can tell ``failed`` from ``dead``)."""
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
