"""GET /metrics in Prometheus' text format.

Request counts and latencies are this process's own. Jobs by status, job durations
and queue depths are read from Postgres and the broker at scrape time, so they are
the same whichever web process answers and however many worker machines there are.
"""

from __future__ import annotations

import time

import anyio
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts import QUEUES, JobStatus
from ingress.state import State
from workers import queues

BUCKETS = (0.01, 0.1, 1.0, 10.0, 60.0, 600.0)
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
            self.requests.labels(scope["method"], template, str(status)).inc()
            self.latency.labels(scope["method"], template).observe(time.perf_counter() - start)


async def metrics(request: Request) -> Response:
    state: State = request.app.state.switchyard
    scrape = CollectorRegistry(auto_describe=False)

    jobs = GaugeMetricFamily("switchyard_jobs", "Jobs by queue and status", labels=["queue", "status"])
    seen = {(r["queue"], r["status"]): r["n"] for r in await state.jobs.counts()}
    for queue in QUEUES:
        for status in JobStatus:
            jobs.add_metric([queue, status.value], seen.get((queue, status.value), 0))

    durations = HistogramMetricFamily("switchyard_job_duration_seconds", "Run time of finished jobs", labels=["queue"])
    for r in await state.jobs.durations():
        cumulative = [
            (str(le), r[key])
            for le, key in zip(BUCKETS, ("le_0_01", "le_0_1", "le_1", "le_10", "le_60", "le_600"), strict=True)
        ]
        durations.add_metric([r["queue"]], [*cumulative, ("+Inf", r["n"])], float(r["total_s"]))

    depth = GaugeMetricFamily("switchyard_queue_messages", "Messages waiting in the broker", labels=["queue", "state"])
    try:
        counts = await anyio.to_thread.run_sync(queues.depths, state.broker, QUEUES, limiter=state.dispatcher.limiter)
    except Exception:  # noqa: BLE001 - a broker outage must not hide the other metrics
        counts = {}
    for queue, (ready, delayed, dead) in counts.items():
        depth.add_metric([queue, "ready"], ready)
        depth.add_metric([queue, "delayed"], delayed)
        depth.add_metric([queue, "dead"], dead)
    broker_up = GaugeMetricFamily("switchyard_broker_up", "1 when the broker answered this scrape")
    broker_up.add_metric([], 1 if counts else 0)

    class Snapshot:
        def collect(self):  # type: ignore[no-untyped-def]
            yield from (jobs, durations, depth, broker_up)

    scrape.register(Snapshot())
    body = generate_latest(request.app.state.registry) + generate_latest(scrape)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


ROUTES = [Route("/metrics", metrics, methods=["GET"])]
