"""Redis clients with timeouts, so a Redis outage fails fast instead of hanging requests."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from bus import settings


def sync_client(url: str | None = None) -> redis.Redis:
    s = settings.get()
    return redis.Redis.from_url(
        url or s.redis_url, socket_timeout=s.redis_timeout * 4, socket_connect_timeout=s.redis_timeout
    )


def async_client(url: str | None = None) -> aioredis.Redis:
    s = settings.get()
    return aioredis.Redis.from_url(
        url or s.redis_url, socket_timeout=s.redis_timeout * 4, socket_connect_timeout=s.redis_timeout
    )
