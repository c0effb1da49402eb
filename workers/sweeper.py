"""The sweeper: enqueues accepted jobs that never reached the broker.

A job row is committed before its message is enqueued. If the broker was down at
that moment, or the process died in between, the row keeps ``enqueued_at IS NULL``
and this pass sends it. Rows are locked with SKIP LOCKED, so any number of
sweepers (one per ticker) can run.
"""

from __future__ import annotations

import logging

import dramatiq

from bus import db
from bus.broker_adapter import enqueue_many
from bus.jobstore import SQL, to_job
from bus.submission import message_for

log = logging.getLogger(__name__)


def sweep(broker: dramatiq.Broker, *, grace_s: float, limit: int = 500) -> int:
    """One pass; returns how many jobs were enqueued."""
    with db.pool().connection() as conn, conn.transaction():
        rows = conn.execute(SQL["unenqueued"], {"grace_s": grace_s, "limit": limit}).fetchall()
        if not rows:
            return 0
        # a failure here rolls the marks back: the next pass sends them again,
        # and the workers recognise a message they already ran by its id
        enqueue_many(broker, [message_for(to_job(row), row["options"]) for row in rows])
        conn.execute(SQL["mark_enqueued"], {"ids": [r["id"] for r in rows]})
    log.info("sweeper enqueued %d accepted jobs the broker had not received", len(rows))
    return len(rows)
