"""The Celery peer's app: one no-op task, run by ``celery -A bench.peer_celery_app worker``.

The workers' app is built at import from the environment the bench gives them:
``PEER_BROKER_URL`` (the run's Valkey) and ``PEER_RESULT_BACKEND`` (a
``db+postgresql+psycopg://`` URL: the SQLAlchemy database backend on the peer's own
database). ``task_track_started`` makes each task write its row twice, STARTED then
SUCCESS, as our job store writes running then succeeded; everything else is Celery's
default.
"""

from __future__ import annotations

import os

from celery import Celery

QUEUE = "peer"
TASK = "peer.noop"


def noop() -> None:
    """Does nothing: what is measured is Celery's own cost per task."""


def make_app(broker: str, backend: str) -> Celery:
    """An app on these servers (the bench makes one per run: Celery caches its connections per app)."""
    app = Celery("bench_peer", broker=broker, backend=backend, set_as_current=False)
    app.conf.update(task_track_started=True, task_default_queue=QUEUE, broker_connection_retry_on_startup=True)
    app.task(name=TASK)(noop)
    return app


app = make_app(
    os.environ.get("PEER_BROKER_URL", "redis://127.0.0.1:6379/0"),
    os.environ.get("PEER_RESULT_BACKEND", "db+postgresql+psycopg:///peer"),
)
