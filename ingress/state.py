"""What the ingress holds while it runs: settings, the Postgres pool, Redis, the broker."""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from bus.async_jobstore import AsyncJobs
from bus.settings import Settings
from ingress.dispatch import Dispatcher


@dataclass
class State:
    settings: Settings
    pool: AsyncConnectionPool
    redis: aioredis.Redis
    broker: dramatiq.Broker
    jobs: AsyncJobs
    dispatcher: Dispatcher
