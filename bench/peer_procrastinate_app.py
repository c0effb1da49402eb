"""The procrastinate peer's app: one no-op task, run by ``procrastinate ... worker``.

Like ``bench.raw_actor`` it is built at import, from the environment the bench gives
its worker (``PEER_DATABASE_URL``: the peer's own database on the run's PostgreSQL).
The connector keeps procrastinate's defaults (a psycopg pool of its default size).
"""

from __future__ import annotations

import os

import procrastinate

QUEUE = "peer"
TASK = "peer.noop"

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("PEER_DATABASE_URL", "postgresql:///peer"))
)


@app.task(name=TASK, queue=QUEUE)
async def noop() -> None:
    """Does nothing: what is measured is procrastinate's own cost per job."""
