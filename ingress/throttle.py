"""Wrong keys counted per client address in Redis, for the API (ingress/auth.py) and the dashboard's sign-in.

A fixed window per address: the first failure starts it, each failure adds one (INCR, EXPIRE NX in
one MULTI, so every web process shares the count). Past ``limit`` failures, a wrong key is answered
429 with Retry-After until the window ends; the right key is never refused, so an attacker sharing an
operator's address (a NAT, a proxy) cannot lock the operator out. API keys are long random strings:
the throttle does not keep them safe, it keeps a guessing script from hammering the web process and
makes it show in the logs. A missing key is not counted (it guesses nothing).

The address is the peer's, or the one a trusted proxy forwarded (FORWARDED_ALLOW_IPS); an IPv6
client counts by its /64, the block one host is usually given.
"""

from __future__ import annotations

import ipaddress
import logging

import redis.asyncio as aioredis

log = logging.getLogger(__name__)


def bucket(address: str) -> str:
    """What failures are counted under: the IPv4 address, an IPv6 address's /64, else the text itself."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


class FailureThrottle:
    def __init__(self, prefix: str, limit: int, window_s: int) -> None:
        self.prefix = prefix
        self.limit = limit
        self.window_s = window_s

    def key(self, address: str) -> str:
        return f"{self.prefix}:{bucket(address)}"

    async def failed(self, redis: aioredis.Redis, address: str) -> int:
        """Count one failure from ``address``: seconds it must wait before its next wrong key is
        answered as one (0 while under the limit, and when Redis is down: the key is wrong either way)."""
        key = self.key(address)
        try:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window_s, nx=True)
                pipe.ttl(key)
                failures, _, ttl = await pipe.execute()
        except aioredis.RedisError as err:
            log.warning("failed-key throttle unavailable: %s", err.__class__.__name__)
            return 0
        if failures == self.limit + 1:
            log.warning("%d wrong keys from %s within %d s: throttled", failures, bucket(address), self.window_s)
        return max(int(ttl), 1) if failures > self.limit else 0
