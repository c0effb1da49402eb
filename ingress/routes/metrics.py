"""GET /metrics in Prometheus' text format.

Request counts and latencies are this process's own. The rest is read at scrape time, so it is
the same whichever web process answers and however many worker machines there are: open jobs
(queued, running, retrying, dead) from Postgres through the status index; jobs ended and their
run times from the counters every job ending adds to in Redis (bus/throughput.py); queue
depths and rejected (poison) messages from the broker (bus/rejections.py). Nothing here reads
finished jobs from the table: a scrape costs the same with ten jobs or ten million. Job events: the
count the relays published, from Redis (bus/event_outbox.py), and the backlog waiting for them, from
the outbox's partial index of unpublished rows.
"""

from __future__ import annotations

import logging
import time

import anyio
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus import broker_adapter as queues
from bus import event_outbox, throughput
from bus.event_outbox import published_key
from bus.jobstore import OPEN
from contracts import QUEUES
from ingress.state import State

log = logging.getLogger(__name__)
disable_created_metrics()  # the *_created series only add noise here


class RequestMetrics:
    """ASGI middleware counting requests by method, route template and status."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "switchyard_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "switchyard_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
        )
        #: (method, route, status) -> its request counter and latency histogram: ``labels()`` takes a
        #: lock and checks its arguments on every call, which a request need not pay once its
        #: series exist (a handful: the routes' templates times the statuses they answer)
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            key = (scope["method"], template, status)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = (
                    self.requests.labels(scope["method"], template, str(status)),
                    self.latency.labels(scope["method"], template),
                )
            series[0].inc()
            series[1].observe(time.perf_counter() - start)


async def metrics(request: Request) -> Response:
    state: State = request.app.state.switchyard
    scrape = CollectorRegistry(auto_describe=False)

    jobs = GaugeMetricFamily("switchyard_jobs", "Open jobs by queue and status", labels=["queue", "status"])
    seen = {(r["queue"], r["status"]): r["n"] for r in await state.jobs.open_counts()}
    for queue in QUEUES:
        for status in OPEN:
            jobs.add_metric([queue, status], seen.get((queue, status), 0))

    ended = CounterMetricFamily("switchyard_jobs_ended", "Job endings by queue and status", labels=["queue", "status"])
    durations = HistogramMetricFamily("switchyard_job_duration_seconds", "Run time of ended jobs", labels=["queue"])
    events_out = CounterMetricFamily("switchyard_events_published", "Job events the relays put on the bus")
    try:
        async with state.redis.pipeline(transaction=False) as pipe:
            throughput.ask_totals(pipe, state.settings.broker_namespace, QUEUES)
            pipe.hget(published_key(state.settings.broker_namespace), "published")
            *replies, published = await pipe.execute()
            totals = throughput.read_totals(QUEUES, replies)
        events_out.add_metric([], int(published or 0))
    except aioredis.RedisError as err:  # the other families still answer
        log.warning("job counters unavailable: %s", err.__class__.__name__)
        totals = {}
    for queue, counts in totals.items():
        for status, n in counts.ended.items():
            ended.add_metric([queue, status], n)
        bounds = [*(f"{b:g}" for b in throughput.RUN_BUCKETS), "+Inf"]
        durations.add_metric([queue], list(zip(bounds, counts.run_buckets, strict=True)), counts.run_seconds)

    waiting = GaugeMetricFamily("switchyard_events_unpublished", "Job events recorded and not yet on the bus")
    try:
        waiting.add_metric([], await event_outbox.unpublished(state.pool))
    except Exception as err:  # noqa: BLE001 - Postgres away: the other families still answer
        log.warning("job events backlog unavailable: %s", err.__class__.__name__)

    depth = GaugeMetricFamily("switchyard_queue_messages", "Messages waiting in the broker", labels=["queue", "state"])
    watched = (*QUEUES, *state.settings.event_destinations)
    try:
        counts = await anyio.to_thread.run_sync(queues.depths, state.broker, watched, limiter=state.dispatcher.limiter)
    except Exception:  # noqa: BLE001 - a broker outage must not hide the other metrics
        counts = {}
    for queue, (ready, delayed, dead) in counts.items():
        depth.add_metric([queue, "ready"], ready)
        depth.add_metric([queue, "delayed"], delayed)
        depth.add_metric([queue, "dead"], dead)
    broker_up = GaugeMetricFamily("switchyard_broker_up", "1 when the broker answered this scrape")
    broker_up.add_metric([], 1 if counts else 0)
    refused = CounterMetricFamily(
        "switchyard_rejected_messages", "Poison messages workers dead-lettered unrun (Redis)", labels=["queue"]
    )
    try:
        rejected = await anyio.to_thread.run_sync(
            queues.rejected_counts, state.broker, QUEUES, limiter=state.dispatcher.limiter
        )
    except Exception:  # noqa: BLE001 - as the depths
        rejected = {}
    for queue, n in rejected.items():
        refused.add_metric([queue], n)

    class Snapshot:
        def collect(self):  # type: ignore[no-untyped-def]
            yield from (jobs, ended, durations, events_out, waiting, depth, broker_up, refused)

    scrape.register(Snapshot())
    body = generate_latest(request.app.state.registry) + generate_latest(scrape)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


ROUTES = [Route("/metrics", metrics, methods=["GET"])]
