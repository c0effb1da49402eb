"""Postgres connection pools (psycopg 3). Created lazily, after Dramatiq forks."""

from __future__ import annotations

import threading
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from workers import settings

_pool: ConnectionPool | None = None
_lock = threading.Lock()


def _options() -> dict[str, Any]:
    s = settings.get()
    return {
        "conninfo": s.database_url,
        "max_size": s.db_pool_size,
        "kwargs": {"row_factory": dict_row, "autocommit": False, "connect_timeout": 5},
        "timeout": s.db_timeout,
    }


def pool() -> ConnectionPool:
    """The process's synchronous pool (workers, ticker, CLI)."""
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = ConnectionPool(**_options(), min_size=1, open=True, name="switchyard")
    return _pool


def async_pool() -> AsyncConnectionPool:
    """A pool for the ingress's event loop; the caller opens and closes it."""
    return AsyncConnectionPool(**_options(), min_size=2, open=False, name="switchyard-web")


def close() -> None:
    global _pool
    if _pool is not None:
        _pool.close()
        _pool = None
