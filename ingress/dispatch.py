"""Hands accepted commands to the broker from the event loop, without blocking it.

The messages sent in one turn of the event loop go to the broker together (bus/batcher.py), in
one round trip, not one each; an accepted command's message goes with its insert batch
(``AsyncJobs.send_created`` is ``send_many``). On Redis they are written from the event loop;
Dramatiq's other brokers are synchronous, so there an enqueue runs on a worker thread. When the
broker is down, a breaker stops trying for a few seconds: requests are still accepted (the job
row is committed) and the sweeper enqueues them later.
"""

from __future__ import annotations

import logging
import time

import anyio
import dramatiq
import redis.asyncio as aioredis

from bus.async_jobstore import AsyncJobs
from bus.batcher import Batcher
from bus.broker_adapter import enqueue_many, enqueue_many_async, is_redis

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        broker: dramatiq.Broker,
        jobs: AsyncJobs,
        *,
        redis: aioredis.Redis | None = None,
        pause_s: float = 2.0,
        threads: int = 8,
    ) -> None:
        self.broker = broker
        self.jobs = jobs
        #: on the Redis broker, messages are written from the event loop (no thread hop)
        self.redis = redis if is_redis(broker) else None
        self.pause_s = pause_s
        self.limiter = anyio.CapacityLimiter(threads)
        self.down_until = 0.0
        #: no ``isolate``: a batch fails only as a whole (the broker is away), never for one message
        self._sends: Batcher[dramatiq.Message, bool] = Batcher(self._send_batch)

    @property
    def broker_down(self) -> bool:
        return time.monotonic() < self.down_until

    async def send(self, message: dramatiq.Message) -> bool:
        """True when the broker took the message; False leaves it to the sweeper. Sent with the
        other messages of this turn of the event loop, in one round trip."""
        return await self._sends.submit(message)

    async def _send_batch(self, messages: list[dramatiq.Message]) -> list[bool]:
        sent = await self.send_many(messages)
        return [sent] * len(messages)

    async def send_many(self, messages: list[dramatiq.Message]) -> bool:
        """All the messages in one round trip (a bulk retry); False leaves them to the sweeper."""
        if self.broker_down:
            return False
        try:
            if self.redis is not None:
                await enqueue_many_async(self.redis, self.broker, messages)
            else:
                await anyio.to_thread.run_sync(enqueue_many, self.broker, messages, limiter=self.limiter)
        except Exception as err:  # noqa: BLE001 - any broker failure: the row is safe, the sweeper retries
            self.down_until = time.monotonic() + self.pause_s
            which = f"job {messages[0].message_id}" if len(messages) == 1 else f"{len(messages)} jobs"
            log.warning("broker unavailable (%s); %s left to the sweeper", err.__class__.__name__, which)
            return False
        for message in messages:
            self.jobs.enqueued(message.message_id)
        return True
