"""Job retention: finished jobs older than ``JOB_RETENTION_DAYS`` are deleted, oldest first.

The ticker calls ``JobRetention.run`` from its housekeeping; a pass starts at most every
``INTERVAL_S``. Each batch is its own short transaction: at most ``BATCH`` jobs are locked
(``FOR UPDATE SKIP LOCKED``, so two tickers take different ones and nothing waits on them),
their artifact files are removed from their stores, then the rows are deleted; their results,
forecasts, anomalies, SageMaker runs and artifact rows go with them (``ON DELETE CASCADE``).
A file is removed before its row, so a pass that dies midway leaves a row without a file
(deleted by the next pass), never a file nobody can find. A pass stops after ``PASS_BUDGET_S``
so the schedules it shares the ticker with never wait long; a backlog left over is taken up at
the next sweep instead of a whole interval later. Jobs still open (queued, running, failed) are
never read: the batches come from the partial index ``jobs_finished_idx``.

``metric_history`` and ``alert_deliveries`` name jobs by id without a foreign key: they are the
models' history and outlive the job records on purpose.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from bus import db
from bus.artifacts import from_row
from bus.queries import load

log = logging.getLogger(__name__)
SQL = load("jobs")
ARTIFACTS_SQL = load("artifacts")
#: jobs deleted per statement (and per transaction)
BATCH = 1000
#: seconds between passes once the expired jobs are gone
INTERVAL_S = 300.0
#: a pass stops after about this long; the rest waits for the next sweep
PASS_BUDGET_S = 1.0


def delete_batch(before: dt.datetime, limit: int = BATCH) -> int:
    """Delete up to ``limit`` jobs finished before ``before``, oldest first; how many went."""
    with db.pool().connection() as conn, conn.transaction():
        ids = [r["id"] for r in conn.execute(SQL["expired"], {"before": before, "limit": limit}).fetchall()]
        if not ids:
            return 0
        for row in conn.execute(ARTIFACTS_SQL["of_jobs"], {"ids": ids}).fetchall():
            from_row(row).delete()
        conn.execute(SQL["delete_many"], {"ids": ids})
    return len(ids)


class JobRetention:
    def __init__(self, days: int) -> None:
        #: 0 keeps every job
        self.days = days
        self._next_pass = 0.0  # the first pass runs at the ticker's first sweep

    def run(self, now: dt.datetime | None = None) -> int:
        """A pass if one is due; the jobs it deleted."""
        if self.days <= 0 or time.monotonic() < self._next_pass:
            return 0
        before = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=self.days)
        # set first: a pass that fails (an artifact store down) is tried again an interval later
        self._next_pass = time.monotonic() + INTERVAL_S
        deadline = time.monotonic() + PASS_BUDGET_S
        deleted = 0
        while True:
            count = delete_batch(before)
            deleted += count
            if count < BATCH:
                break
            if time.monotonic() > deadline:  # a backlog: more at the next sweep
                self._next_pass = 0.0
                break
        if deleted:
            log.info("job retention: deleted %d jobs finished before %s", deleted, before.isoformat())
        return deleted
