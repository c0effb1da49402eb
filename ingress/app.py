"""The Starlette application: ``uvicorn ingress.app:create_app --factory``.

Nothing long runs here: a request is validated, recorded and handed to the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware

from bus import broker as broker_setup
from bus import db, settings
from bus.async_jobstore import AsyncJobs
from bus.redis_client import async_client
from ingress.auth import ApiKeyMiddleware
from ingress.dispatch import Dispatcher
from ingress.errors import HANDLERS
from ingress.read_timeout import ReadTimeout
from ingress.routes import (
    artifacts,
    commands,
    forecasts,
    gooddata,
    health,
    jobs,
    metrics,
    models,
    openapi,
    pipelines,
    rejected,
    rules,
    schedules,
)
from ingress.state import State
from ingress.throttle import FailureThrottle
from ingress.ui import ROUTES as UI_ROUTES
from ingress.url_check import UrlCheck

log = logging.getLogger(__name__)
#: the Redis keys of the API's failed-key counts, one per client address
API_FAILURES = "switchyard:api:key-failures"


class RefuseToStart(SystemExit):
    """The web process refuses to start: no API key, or no database configured."""


def create_app(config: settings.Settings | None = None) -> Starlette:
    config = config or settings.get()
    if not config.keys:
        # there is no default key: refuse rather than serve an open API
        print(
            "switchyard: refusing to start: API_KEYS is empty. Set API_KEYS to one or more "
            "comma-separated secret keys (make up generates one for a local run).",
            file=sys.stderr,
        )
        raise RefuseToStart(2)
    if not config.database_url:
        print(f"switchyard: refusing to start: {settings.NOT_CONFIGURED}.", file=sys.stderr)
        raise RefuseToStart(2)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = db.async_pool()
        # job reads and writes are single statements: autocommit spares BEGIN and COMMIT
        statements = db.async_pool(autocommit=True)
        for each in (pool, statements):
            await each.open(wait=False)  # start even if Postgres is down: requests answer 503
        redis = async_client()
        bus = broker_setup.build()
        on_rabbitmq = config.broker.startswith(("amqp://", "amqps://"))
        bus_redis = redis if on_rabbitmq or config.broker == config.redis_url else async_client(config.broker)
        store = AsyncJobs(statements, redis, config.status_ttl_s, namespace=config.broker_namespace)
        dispatcher = Dispatcher(bus, store, redis=None if on_rabbitmq else bus_redis)
        store.send_created = dispatcher.send_many  # accepted commands go to the broker with their batch
        app.state.switchyard = State(config, pool, redis, bus, store, dispatcher)
        marker = asyncio.create_task(store.run_marker())
        try:
            yield
        finally:
            marker.cancel()
            await store.flush_marks()
            for each in (pool, statements):
                await each.close()
            await redis.aclose()
            if bus_redis is not redis:
                await bus_redis.aclose()
            bus.close()

    registry = CollectorRegistry(auto_describe=False)
    app = Starlette(
        routes=[
            *commands.ROUTES,
            *jobs.ROUTES,
            *artifacts.ROUTES,
            *gooddata.ROUTES,
            *schedules.ROUTES,
            *rules.ROUTES,
            *models.ROUTES,
            *pipelines.ROUTES,
            *forecasts.ROUTES,
            *rejected.ROUTES,
            *health.ROUTES,
            *metrics.ROUTES,
            *openapi.ROUTES,
            *UI_ROUTES,
        ],
        middleware=[
            Middleware(metrics.RequestMetrics, registry=registry),
            Middleware(ReadTimeout, seconds=config.body_read_timeout_s),
            # before the key check: a control character in a URL is refused whoever asks
            Middleware(UrlCheck),
            Middleware(
                ApiKeyMiddleware,
                keys=config.keys,
                throttle=FailureThrottle(API_FAILURES, config.api_key_failure_limit, config.api_key_failure_window_s),
            ),
        ],
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.registry = registry
    return app
