"""The ticker process (``python -m workers.ticker``). On every pass it:

- requeues the messages of Redis workers that died mid-job (their heartbeat stopped);
- enqueues accepted jobs the broker never received (the sweeper).

Schedules (cron) are emitted from here too once the schedule store exists. Every
pass is safe to run in several tickers at once.
"""

from __future__ import annotations

import logging
import signal
import threading

from contracts import QUEUES
from workers import broker as broker_setup
from workers import settings
from workers.jobstore import unavailable
from workers.queues import requeue_orphans
from workers.sweeper import sweep

log = logging.getLogger("workers.ticker")


def run(stop: threading.Event) -> None:
    s = settings.get()
    bus = broker_setup.build(with_lifecycle=False)
    log.info("ticker started: sweeping every %.1f s", s.sweep_interval_s)
    while not stop.is_set():
        try:
            requeue_orphans(bus, QUEUES)
            while sweep(bus, grace_s=s.enqueue_grace_s) and not stop.is_set():
                pass  # a backlog is drained in batches without waiting
        except Exception as err:
            if unavailable(err) or "Connection" in type(err).__name__:
                log.warning("pass skipped: %s", err.__class__.__name__)
            else:
                log.exception("ticker pass failed")
        stop.wait(s.sweep_interval_s)
    bus.close()


def main() -> None:
    logging.basicConfig(level=settings.get().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run(stop)


if __name__ == "__main__":
    main()
