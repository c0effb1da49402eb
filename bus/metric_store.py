"""Where a computation goes: its history row in Postgres and the latest result in Redis."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
import redis
from psycopg.types.json import Jsonb

from bus import db
from bus.queries import load
from bus.redis_client import sync_client

SQL = load("metrics")
LATEST_PREFIX = "switchyard:metrics:latest:"
#: the original service's key, still written for readers of its Redis
LEGACY_PREFIX = "result_"

_redis: redis.Redis | None = None


def _client() -> redis.Redis:
    global _redis
    if _redis is None:
        _redis = sync_client()
    return _redis


def latest_key(model_id: uuid.UUID | str) -> str:
    return f"{LATEST_PREFIX}{model_id}"


def record(
    *, job_id: str, model_id: uuid.UUID, schedule: str | None, n: int, rows: int, metrics: dict[str, Any]
) -> dt.datetime:
    with db.pool().connection() as conn:
        row = conn.execute(
            SQL["record"],
            {
                "job_id": job_id,
                "model_id": model_id,
                "schedule": schedule,
                "n": n,
                "rows": rows,
                "metrics": Jsonb(metrics),
            },
        ).fetchone()
    assert row is not None
    return row["computed_at"]


def publish_latest(latest: dict[str, Any]) -> None:
    """Redis serves GET /results/<model_id>; Postgres keeps the history either way."""
    client = _client()
    with client.pipeline(transaction=True) as tx:
        tx.set(latest_key(latest["model_id"]), msgspec.json.encode(latest))
        if latest.get("accuracy") is not None:
            tx.set(f"{LEGACY_PREFIX}{latest['model_id']}", repr(latest["accuracy"]))
        tx.execute()
