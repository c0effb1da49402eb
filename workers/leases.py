"""The leases of a worker process's running attempts, renewed while they run.

A running job holds a lease (``jobs.lease_until``, LEASE_S from its start). While a handler
runs, one daemon thread per process renews the leases of all its running attempts in one
statement every third of LEASE_S (progress writes renew a job's lease too). When the process
dies the renewals stop, and once the lease has run out the reconciler (workers/reconciler.py)
gives the job to another attempt. A renewal that fails (Postgres unreachable) is logged once
per outage and tried again at the next beat; the job goes on.
"""

from __future__ import annotations

import logging
import threading
import time

from bus import settings
from bus.jobstore import shared

log = logging.getLogger(__name__)


class Leases:
    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._held: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failing = False

    def hold(self, job_id: str, attempt: int) -> None:
        with self._lock:
            self._held.add((job_id, attempt))
            if self._thread is None:
                # started by the first job, in the worker process (Dramatiq forks after import)
                self._thread = threading.Thread(target=self._run, name="job-leases", daemon=True)
                self._thread.start()

    def release(self, job_id: str, attempt: int) -> None:
        with self._lock:
            self._held.discard((job_id, attempt))

    def held(self) -> list[tuple[str, int]]:
        with self._lock:
            return sorted(self._held)

    def _run(self) -> None:
        while True:
            time.sleep(self.every_s)
            self.renew()

    def renew(self) -> None:
        held = self.held()
        if not held:
            return
        try:
            shared().renew_leases(held)
        except Exception as err:  # noqa: BLE001 - a renewal is retried at the next beat; the jobs go on
            if not self._failing:
                log.warning("lease renewal of %d running jobs failed: %s", len(held), err.__class__.__name__)
            self._failing = True
            return
        if self._failing:
            log.info("lease renewals work again")
            self._failing = False


_leases: Leases | None = None
_lock = threading.Lock()


def leases() -> Leases:
    """The process's leases."""
    global _leases
    if _leases is None:
        with _lock:
            if _leases is None:
                _leases = Leases(settings.get().lease_s / 3)
    return _leases
