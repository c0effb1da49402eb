"""The one settings object, read from the environment (names in upper case).

Every process (web, pools, ticker, CLI) reads the same variables; the README's
configuration table lists them.
"""

from __future__ import annotations

import functools
import os
from typing import Annotated, Literal

import msgspec

Positive = Annotated[int, msgspec.Meta(ge=1)]


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Redis by default; amqp://... selects RabbitMQ
    broker_url: str = ""
    #: key prefix of Dramatiq's Redis broker (lets two deployments share a Redis)
    broker_namespace: str = "dramatiq"
    #: comma-separated; no default key exists
    api_keys: str = ""
    max_body_bytes: Positive = 1_048_576
    db_pool_size: Positive = 10
    #: seconds a request waits for a database connection before answering 503
    db_timeout: Annotated[float, msgspec.Meta(gt=0)] = 3.0
    redis_timeout: Annotated[float, msgspec.Meta(gt=0)] = 0.5
    max_retries: Annotated[int, msgspec.Meta(ge=0)] = 5
    min_backoff_ms: Positive = 1000
    #: stays below RabbitMQ's 30 min consumer_timeout
    max_backoff_ms: Annotated[int, msgspec.Meta(ge=1, le=20 * 60 * 1000)] = 5 * 60 * 1000
    #: a job running longer than this is interrupted (Dramatiq time limit)
    job_time_limit_ms: Positive = 60 * 60 * 1000
    #: a Redis-broker worker silent this long is dead; its messages go back to the queue
    heartbeat_timeout_ms: Annotated[int, msgspec.Meta(ge=2000)] = 8000
    #: chance per million broker calls to run that requeue pass (Dramatiq's default: 1000)
    maintenance_chance: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 100_000
    #: seconds between sweeper passes (re-enqueue of accepted jobs the broker never got)
    sweep_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    #: a queued job not handed to the broker after this many seconds is re-enqueued
    enqueue_grace_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    #: how long the Redis status mirror keeps a job
    status_ttl_s: Positive = 7 * 86400
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @property
    def broker(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.api_keys.split(",") if k.strip())

    def __repr__(self) -> str:  # never print URLs with passwords or the keys
        return "Settings(<redacted>)"


class SettingsError(ValueError):
    pass


def from_env(environ: dict[str, str] | None = None) -> Settings:
    environ = dict(os.environ if environ is None else environ)
    names = Settings.__struct_fields__
    values = {name: environ[name.upper()] for name in names if environ.get(name.upper(), "") != ""}
    try:
        return msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as err:
        message, _, path = str(err).partition(" - at `$.")
        name = path.rstrip("`").upper() or "environment"
        raise SettingsError(f"bad configuration: {name}: {message.replace('`', '')}") from None


@functools.cache
def get() -> Settings:
    return from_env()
