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

from ingress.auth import ApiKeyMiddleware
from ingress.dispatch import Dispatcher
from ingress.errors import HANDLERS
from ingress.jobs import AsyncJobs
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
    schedules,
)
from ingress.state import State
from workers import broker as broker_setup
from workers import db, settings
from workers.redis_client import async_client

log = logging.getLogger(__name__)


class NoApiKeys(SystemExit):
    pass


def create_app(config: settings.Settings | None = None) -> Starlette:
    config = config or settings.get()
    if not config.keys:
        # there is no default key: refuse rather than serve an open API
        print(
            "switchyard: refusing to start: API_KEYS is empty. Set API_KEYS to one or more "
            "comma-separated secret keys (make up generates one for a local run).",
            file=sys.stderr,
        )
        raise NoApiKeys(2)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = db.async_pool()
        await pool.open(wait=False)  # start even if Postgres is down: requests answer 503
        redis = async_client()
        bus = broker_setup.build(with_lifecycle=False)
        store = AsyncJobs(pool, redis, config.status_ttl_s)
        app.state.switchyard = State(config, pool, redis, bus, store, Dispatcher(bus, store))
        marker = asyncio.create_task(store.run_marker())
        try:
            yield
        finally:
            marker.cancel()
            await store.flush_marks()
            await pool.close()
            await redis.aclose()
            bus.close()

    registry = CollectorRegistry(auto_describe=False)
    app = Starlette(
        routes=[
            *commands.ROUTES,
            *jobs.ROUTES,
            *artifacts.ROUTES,
            *gooddata.ROUTES,
            *schedules.ROUTES,
            *models.ROUTES,
            *pipelines.ROUTES,
            *forecasts.ROUTES,
            *health.ROUTES,
            *metrics.ROUTES,
            *openapi.ROUTES,
        ],
        middleware=[
            Middleware(metrics.RequestMetrics, registry=registry),
            Middleware(ApiKeyMiddleware, keys=config.keys),
        ],
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.registry = registry
    return app
