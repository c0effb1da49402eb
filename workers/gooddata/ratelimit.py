"""A request-rate limiter shared by every thread of a worker process."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """Spaces calls ``1 / rate`` seconds apart, in arrival order, without bursts.

    Each caller reserves the next free slot under the lock and sleeps outside it, so
    threads wait for their own slot instead of queueing behind one sleeping holder.
    ``rate`` 0 means no limit.
    """

    def __init__(self, rate_per_s: float) -> None:
        self.interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for this call's slot; returns the seconds waited."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            time.sleep(wait)
        return wait
