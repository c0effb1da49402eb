"""Apply ``sql/migrations/NNNN_name.sql`` in order, once each.

An advisory lock makes concurrent starts (two web processes, a pool and the
ticker) wait for each other instead of applying the same file twice. A file
changed after it was applied is refused: migrations are append-only.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import psycopg

from bus.queries import SQL_DIR

log = logging.getLogger(__name__)
MIGRATIONS = SQL_DIR / "migrations"
_LOCK_ID = 0x5357_5944  # "SWYD"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    pass


def files(directory: Path = MIGRATIONS) -> list[tuple[int, Path]]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_case.sql")
        found.append((int(match[1]), path))
    versions = [v for v, _ in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a number")
    return found


def migrate(database_url: str, directory: Path = MIGRATIONS) -> list[str]:
    """Apply pending migrations; returns the names applied now."""
    applied_now: list[str] = []
    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {v: c for v, c in conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()}
            for version, path in files(directory):
                text = path.read_text()
                checksum = hashlib.sha256(text.encode()).hexdigest()
                if version in done:
                    if done[version] != checksum:
                        raise MigrationError(f"{path.name} changed after it was applied; add a new migration instead")
                    continue
                with conn.transaction():
                    conn.execute(text)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (version, path.name, checksum),
                    )
                log.info("applied migration %s", path.name)
                applied_now.append(path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied_now
