"""Fresh embedded servers for each scenario, and the environment the processes under test get."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql

from bus.migrate import migrate
from bus.settings import Settings
from devservers import EmbeddedPostgres, EmbeddedRedis

warnings.filterwarnings("ignore", module="platformdirs")

#: every variable Switchyard reads; a developer's own values must not leak into a run
SETTINGS_VARS = frozenset(name.upper() for name in Settings.__struct_fields__)
API_KEY = "bench-" + secrets.token_urlsafe(18)
#: server name -> version, as the servers started in this run report it (for RESULTS.md)
versions_seen: dict[str, str] = {}


@dataclass
class Services:
    redis_url: str
    #: empty for a scenario without PostgreSQL
    database_url: str = ""
    namespace: str = field(default_factory=lambda: "bench-" + secrets.token_hex(3))
    #: server name -> pid of its main process (for CPU accounting)
    pids: dict[str, int] = field(default_factory=dict)

    def settings(self) -> dict[str, str]:
        values = {"REDIS_URL": self.redis_url, "BROKER_NAMESPACE": self.namespace, "API_KEYS": API_KEY}
        if self.database_url:
            values["DATABASE_URL"] = self.database_url
        return values

    def env(self) -> dict[str, str]:
        """The whole environment of a child process under test."""
        return {**base_env(), **self.settings()}

    @contextlib.contextmanager
    def in_this_process(self) -> Iterator[None]:
        """Point this process's ``contracts.publish`` and settings at the scenario's servers."""
        saved = dict(os.environ)
        for name in SETTINGS_VARS:
            os.environ.pop(name, None)
        os.environ.update(self.settings())
        _clear_settings_cache()
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)
            _clear_settings_cache()

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def versions(self) -> dict[str, str]:
        info = self.redis().info("server")
        found = {"Valkey": str(info.get("valkey_version") or info.get("redis_version"))}
        if self.database_url:
            with psycopg.connect(self.database_url) as conn:
                row = conn.execute("SHOW server_version").fetchone()
            found["PostgreSQL"] = str(row[0]) if row else "?"
        return found


def base_env() -> dict[str, str]:
    """This process's environment without any Switchyard setting."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARS}
    return {**env, "PYTHONUNBUFFERED": "1"}


def _clear_settings_cache() -> None:
    # bus.settings.get is cached for the life of a process; a scenario changes the URLs
    module = sys.modules.get("bus.settings")
    if module is not None:
        module.get.cache_clear()


def _pid_from(path: Path) -> int:
    return int(path.read_text().split()[0])


def create_database(server_url: str, name: str) -> str:
    """A new empty database on the server of ``server_url``; returns its URL (a peer's schema goes there)."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


@contextlib.contextmanager
def fresh(root: Path, name: str, *, postgres: bool = True, migrated: bool = True) -> Iterator[Services]:
    """A new Valkey (no persistence, like the tests') and, if asked, a new PostgreSQL, migrated unless
    ``migrated`` is false (a peer brings its own schema)."""
    with contextlib.ExitStack() as stack:
        valkey = EmbeddedRedis(root / name / "valkey", persist=False)
        stack.callback(valkey.stop)
        services = Services(redis_url=valkey.start())
        services.pids["valkey"] = _pid_from(valkey.pid_file)
        if postgres:
            pg = EmbeddedPostgres(root / name / "postgres")
            stack.callback(pg.stop)
            services.database_url = pg.start()
            services.pids["postgres"] = _pid_from(pg.pgdata / "postmaster.pid")
            if migrated:
                migrate(services.database_url)
        versions_seen.update(services.versions())
        yield services
