"""The one settings object, read from the environment (names in upper case).

Every process (web, pools, ticker, CLI) reads the same variables; the README's
configuration table lists them.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from bus import smtp_url
from bus.smtp_url import SmtpServer
from contracts import QUEUES
from contracts.event import EVENTS_QUEUE

Positive = Annotated[int, msgspec.Meta(ge=1)]


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    #: no default on purpose: a process never talks to whatever database happens to listen on
    #: 127.0.0.1:5432 (``make up`` sets it; the CLI finds the local run's, see ``use_local_run``)
    database_url: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Redis by default; amqp://... selects RabbitMQ
    broker_url: str = ""
    #: key prefix of Dramatiq's Redis broker, and part of the dashboard's worker and throughput keys
    #: (lets two deployments share a Redis)
    broker_namespace: str = "dramatiq"
    #: comma-separated; no default key exists
    api_keys: str = ""
    max_body_bytes: Positive = 1_048_576
    #: wrong API keys one client address may send per window before the next is answered 429
    #: (the right key is never refused); counted in Redis, so across web processes
    api_key_failure_limit: Positive = 20
    api_key_failure_window_s: Positive = 60
    #: the longest silence (seconds) between two chunks of a request body before it is cut with a 408
    body_read_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    #: addresses (and networks, or *) of proxies whose X-Forwarded-For / X-Forwarded-Proto the web
    #: process believes; empty: none, the peer's own address is the client's. Read by uvicorn's
    #: --forwarded-allow-ips in the Procfile (and the image's command); checked here
    forwarded_allow_ips: str = ""
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
    #: chance per million broker calls of Dramatiq's own requeue pass. Off: the ticker requeues dead
    #: workers' messages every sweep, at the head of their queues; Dramatiq's pass would put them at
    #: the tail first, and may scan the Redis keyspace (KEYS). Only for running without a ticker
    maintenance_chance: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    #: seconds between sweeper passes (re-enqueue of accepted jobs the broker never got)
    sweep_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    #: a queued job not handed to the broker after this many seconds is re-enqueued
    enqueue_grace_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    #: seconds a running attempt holds its job; its worker renews the lease every third of it. A job
    #: whose lease ran out and that no live worker lists is run again by the reconciler
    lease_s: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 15.0
    #: Redis broker: a queued job whose message the broker no longer holds (a Redis restarted
    #: empty) is sent again once it was sent this many seconds ago
    redrive_after_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    #: RabbitMQ (which cannot be looked into): a queued job not started this many seconds after its
    #: message was sent is sent again (a duplicate is harmless, a lost message is not)
    redrive_rabbitmq_after_s: Annotated[float, msgspec.Meta(gt=0)] = 1800.0
    #: how often the ticker looks for due schedules
    tick_interval_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.5
    #: a slot later than this is a misfire (handled by the schedule's policy); earlier ones always fire
    misfire_grace_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    #: a schedule whose cron has two slots closer than this (seconds) is refused when it is written
    #: (422 naming $.cron); 0 or 1 allows any cron (none fires more often than every second)
    min_schedule_interval_s: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    #: the longest chain of rule firings (a follow-up of a follow-up ...): a rule that could make a longer
    #: one is refused when it is written, and a job this many firings deep triggers no rule
    max_chain_depth: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    #: workers drop scheduled commands whose slot is older than this (a backlog of stale ticks)
    tick_staleness_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    #: how long the Redis status mirror keeps a finished job (Postgres answers after that). Short on
    #: purpose: with maintenance_chance > 0, when a worker or publisher stops heartbeating, Dramatiq's
    #: Redis broker runs KEYS over its whole database, ~85 ms per million keys, blocking Redis; a week
    #: of jobs made that seconds
    status_ttl_s: Positive = 3600
    #: finished jobs (succeeded, dead, cancelled) older than this many days are deleted by the
    #: ticker, with their results and artifacts; 0 keeps every job
    job_retention_days: Annotated[int, msgspec.Meta(ge=0)] = 30
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: GoodData Cloud organisation URL and API token (the token never reaches logs or job records)
    gooddata_host: str = ""
    gooddata_token: str = ""
    #: GoodData requests per second per gooddata worker process (all its threads share it); 0 = no limit
    gooddata_rate_per_s: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    #: seconds one GoodData HTTP request may take (connect + read) before it is retried as a timeout
    gooddata_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    #: exports: first wait between polls of a running export (doubles up to 5 s), and the whole wait
    gooddata_export_poll_s: Annotated[float, msgspec.Meta(gt=0, le=5)] = 0.2
    gooddata_export_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    #: where exports and backups go: a directory (default .data/artifacts), file:///path or s3://bucket/prefix
    artifacts_url: str = ".data/artifacts"
    #: forecast pool, local backend: processes fitting models per worker process (0 = one per core)
    forecast_n_jobs: Annotated[int, msgspec.Meta(ge=0, le=256)] = 0
    #: forecast pool: where numba keeps statsforecast's compiled models between fitting processes
    #: (workers/forecast/compile_cache.py); empty: NUMBA_CACHE_DIR, else the user's cache directory;
    #: ``off``: every fitting process compiles them again
    forecast_compile_cache: str = ""
    #: statsforecast models combined with drift on every series (chosen or ensembled per series by validation)
    forecast_models: str = "AutoETS,AutoTheta,AutoARIMA,AutoCES"
    #: the SQL source: database it reads (default DATABASE_URL; point it at a read-only role), limits
    forecast_sql_url: str = ""
    #: the whole query's deadline (every fetch gets what is left), and the rows and bytes it may return
    forecast_sql_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    forecast_sql_max_rows: Positive = 1_000_000
    forecast_sql_max_bytes: Positive = 256 * 1024 * 1024
    #: the role users' SQL runs as (SET ROLE inside the read-only transaction; migration 0007 creates it)
    forecast_sql_role: str = "switchyard_reader"
    #: comma-separated schemas that role may read (default: demo and the pipelines catalog's schemas).
    #: Never ours: public (jobs, schedules and their secrets) and the system schemas are refused
    forecast_sql_schemas: str = ""
    #: sagemaker backend (AWS credentials: boto3's usual chain, e.g. AWS_ACCESS_KEY_ID / AWS_PROFILE)
    sagemaker_region: str = "us-east-1"
    sagemaker_role_arn: str = ""
    sagemaker_bucket: str = ""
    sagemaker_prefix: str = "switchyard"
    sagemaker_training_instance: str = "ml.c5.2xlarge"
    sagemaker_inference_instance: str = "ml.m5.large"
    #: a training job is stopped by SageMaker after this long
    sagemaker_max_runtime_s: Annotated[int, msgspec.Meta(ge=60, le=5 * 86400)] = 3600
    #: delay between polls of a training job (the job is re-enqueued; no thread waits)
    sagemaker_poll_s: Annotated[float, msgspec.Meta(gt=0, le=900)] = 30.0
    #: longest wait for an endpoint to come into service
    sagemaker_endpoint_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 1800.0
    #: AWS API endpoint override (tests: a moto server); empty: AWS
    sagemaker_endpoint_url: str = ""
    #: networks outbound calls (alert webhooks) may reach although they are not public, e.g.
    #: ``10.1.2.0/24,127.0.0.1/32``; empty: public addresses only
    outbound_allow: str = ""
    #: the mail server of e-mail notifications (bus/smtp_url.py: smtp://user:password@host:port with
    #: STARTTLS, smtps:// for TLS from the start); empty: e-mail notifications end dead naming it
    smtp_url: str = ""
    #: the notifications' From address (needed once SMTP_URL is set)
    smtp_from: str = ""
    #: seconds to connect and for each answer of the mail server
    smtp_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=300)] = 30.0
    #: trust roots (a PEM file) for a mail server with a private certificate; empty: the system's
    smtp_ca_file: str = ""
    #: pipelines pool: the catalog's YAML files (tables and pipelines)
    catalog_dir: str = "catalog"
    #: comma-separated module prefixes a pipeline's Python node may name (``function: catalog.functions.f``)
    pipeline_modules: str = "catalog"
    #: longest body of PUT /v1/tables/{schema}.{table}/rows (streamed; MAX_BODY_BYTES is for commands)
    ingest_max_body_bytes: Positive = 256 * 1024 * 1024
    #: a node's statement running longer is cancelled and the node fails (0: no limit)
    pipeline_statement_timeout_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    #: comma-separated queues that get every job event besides ``events`` (which the rule processors
    #: consume): one per outside consumer, each receiving all events (the relay fans them out)
    event_queues: str = ""
    #: job events the relay claims, publishes and marks in one transaction
    event_relay_batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    #: seconds between the relay's looks at the outbox while it is empty (the longest an event waits)
    event_relay_poll_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.2

    @property
    def database(self) -> str:
        """DATABASE_URL, or a SettingsError naming what to set."""
        if not self.database_url:
            raise SettingsError(NOT_CONFIGURED)
        return self.database_url

    @property
    def broker(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def smtp(self) -> SmtpServer | None:
        """The mail server SMTP_URL names (checked when the settings were read), or None."""
        return smtp_url.parse(self.smtp_url) if self.smtp_url else None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.api_keys.split(",") if k.strip())

    @property
    def event_destinations(self) -> tuple[str, ...]:
        """The queues every job event is published to: ``events`` first, then EVENT_QUEUES."""
        extra = (q.strip() for q in self.event_queues.split(",") if q.strip())
        return tuple(dict.fromkeys((EVENTS_QUEUE, *extra)))

    def __repr__(self) -> str:  # never print URLs with passwords or the keys
        return "Settings(<redacted>)"


class SettingsError(ValueError):
    pass


NOT_CONFIGURED = (
    "DATABASE_URL is not set: set DATABASE_URL and REDIS_URL (BROKER_URL for RabbitMQ), "
    "or run `make up` in this directory, which writes them to .data/local.env"
)


def data_dir() -> Path:
    """Where ``make up`` keeps its servers' data and ``local.env`` (SWITCHYARD_DATA, default .data)."""
    return Path(os.environ.get("SWITCHYARD_DATA") or ".data")


def local_env_file() -> Path:
    return data_dir() / "local.env"


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines (``#`` comments ignored), as ``make up`` writes them."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.strip().startswith("#"):
            values[name.strip()] = value.strip()
    return values


def use_local_run() -> None:
    """For the command line: without DATABASE_URL in the environment, take the settings of the
    local run (``.data/local.env``, written by ``make up``); with neither, a SettingsError says
    what to set. Never a silent default database."""
    if os.environ.get("DATABASE_URL"):
        return
    path = local_env_file()
    values = read_env_file(path) if path.is_file() else {}
    if not values.get("DATABASE_URL"):
        raise SettingsError(NOT_CONFIGURED)
    for name, value in values.items():
        os.environ.setdefault(name, value)
    get.cache_clear()


#: schemas users' SQL may never be given: ours (jobs, schedules) and the server's
PRIVATE_SCHEMAS = frozenset({"public", "pg_catalog", "information_schema", "pg_toast"})


def _check_proxies(text: str) -> None:
    for entry in (e.strip() for e in text.split(",")):
        if entry in ("", "*"):
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            # uvicorn would take it as a literal that never matches, and trust nothing silently
            raise SettingsError(
                f"bad configuration: FORWARDED_ALLOW_IPS: {entry!r} is not an IP address or network"
            ) from None


#: a queue name Dramatiq's brokers take as it is (its delay and dead-letter queues are derived from it)
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")


def _check_event_queues(text: str) -> None:
    for name in (q.strip() for q in text.split(",") if q.strip()):
        if not _QUEUE_NAME.match(name) or name.endswith((".DQ", ".XQ")):
            raise SettingsError(
                f"bad configuration: EVENT_QUEUES: {name!r} is not a queue name (letters, digits, _ . -; "
                "not ending in .DQ or .XQ)"
            )
        if name in QUEUES:
            # a pool's workers would dead-letter every event as a message of an unknown actor
            raise SettingsError(f"bad configuration: EVENT_QUEUES: {name!r} is a pool's command queue")


#: enough of an address to catch a typo (a name, an @, a domain with a dot); the server checks the rest
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


def _check_mail(settings: Settings) -> None:
    """A bad SMTP_URL stops the process at start, named, without its password in the message."""
    if settings.smtp_from and not _ADDRESS.match(settings.smtp_from):
        raise SettingsError("bad configuration: SMTP_FROM: not an e-mail address (name@example.com)")
    if not settings.smtp_url:
        return
    try:
        smtp_url.parse(settings.smtp_url)
    except smtp_url.BadSmtpUrl as err:
        raise SettingsError(f"bad configuration: {err}") from None
    if not settings.smtp_from:
        raise SettingsError("bad configuration: SMTP_FROM: needed with SMTP_URL (the notifications' From address)")


def _check(settings: Settings) -> Settings:
    _check_proxies(settings.forwarded_allow_ips)
    _check_event_queues(settings.event_queues)
    _check_mail(settings)
    exposed = {name.strip().lower() for name in settings.forecast_sql_schemas.split(",") if name.strip()}
    if exposed & PRIVATE_SCHEMAS:
        raise SettingsError(
            f"bad configuration: FORECAST_SQL_SCHEMAS: {', '.join(sorted(exposed & PRIVATE_SCHEMAS))} may not be "
            "exposed to users' SQL (it holds the jobs, the schedules' secrets or the server's catalogs)"
        )
    return settings


def from_env(environ: dict[str, str] | None = None) -> Settings:
    environ = dict(os.environ if environ is None else environ)
    names = Settings.__struct_fields__
    values = {name: environ[name.upper()] for name in names if environ.get(name.upper(), "") != ""}
    try:
        return _check(msgspec.convert(values, Settings, strict=False))
    except msgspec.ValidationError as err:
        message, _, path = str(err).partition(" - at `$.")
        name = path.rstrip("`").upper() or "environment"
        raise SettingsError(f"bad configuration: {name}: {message.replace('`', '')}") from None


@functools.cache
def get() -> Settings:
    return from_env()


def require_database() -> str:
    """DATABASE_URL; a process calls it as it starts, so a missing one stops it at once, named."""
    return get().database
