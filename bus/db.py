"""Postgres connection pools (psycopg 3). Created lazily, after Dramatiq forks."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from bus import settings

_pool: ConnectionPool | None = None
_lock = threading.Lock()


def _options(*, autocommit: bool = False, durable: bool = True) -> dict[str, Any]:
    s = settings.get()
    kwargs: dict[str, Any] = {"row_factory": dict_row, "autocommit": autocommit, "connect_timeout": 5}
    if not durable:
        kwargs["options"] = "-c synchronous_commit=off"
    return {"conninfo": s.database, "max_size": s.db_pool_size, "kwargs": kwargs, "timeout": s.db_timeout}


_statements: dict[bool, ConnectionPool] = {}


def statements(*, durable: bool = True) -> ConnectionPool:
    """Autocommit pools for single-statement writes (job transitions): one round trip each
    instead of BEGIN, statement, COMMIT. ``durable=False`` commits without waiting for the
    disk, for writes whose loss a redelivery corrects (a job's start, its progress)."""
    if durable not in _statements:
        with _lock:
            if durable not in _statements:
                _statements[durable] = ConnectionPool(
                    **_options(autocommit=True, durable=durable),
                    min_size=1,
                    open=True,
                    name=f"switchyard-statements-{'durable' if durable else 'fast'}",
                )
    return _statements[durable]


def pool() -> ConnectionPool:
    """The process's synchronous pool (workers, ticker, CLI)."""
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = ConnectionPool(**_options(), min_size=1, open=True, name="switchyard")
    return _pool


def async_pool(*, autocommit: bool = False) -> AsyncConnectionPool:
    """A pool for the ingress's event loop; the caller opens and closes it."""
    return AsyncConnectionPool(
        **_options(autocommit=autocommit), min_size=2, open=False, name=f"switchyard-web{'-ac' if autocommit else ''}"
    )


def close() -> None:
    global _pool
    if _pool is not None:
        _pool.close()
        _pool = None
    for pool in _statements.values():
        pool.close()
    _statements.clear()


def refused_value(err: BaseException) -> bool:
    """Postgres refused a value of the statement (a NUL, a number or date out of range, a row too
    big), not the statement itself: one row's fault, which a batched write isolates (the ingress's
    insert batcher, the worker's group commit)."""
    return isinstance(err, (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded))
