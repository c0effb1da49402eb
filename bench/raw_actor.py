"""Baseline of scenario (a): a plain Dramatiq actor that does nothing, on a plain Redis broker.

The worker runs ``dramatiq bench.raw_actor``. Like any Dramatiq app it builds its
broker at import, from the environment the bench gives it (``REDIS_URL`` and
``BROKER_NAMESPACE``), with Dramatiq's default middleware and nothing of ours.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

QUEUE = "raw"
ACTOR = "raw.noop"

broker = RedisBroker(
    url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    namespace=os.environ.get("BROKER_NAMESPACE", "dramatiq"),
)
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE)
def noop() -> None:
    """Does nothing: what is measured is Dramatiq's own cost per message."""
