"""Model metrics: the original accuracy service's API, kept as it was, and the history.

POST /schedule {model_id, cron_expression}   create or atomically replace
DELETE /schedule/{model_id}
GET /results/{model_id}                      the latest result, from Redis
GET /v1/models/{model_id}/metrics?metric=&since=&limit=   every computation, from Postgres
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus import db
from bus import schedule_store as schedules
from bus.metric_store import latest_key
from bus.queries import load
from contracts import metrics
from contracts.cron import check
from contracts.schedules import ScheduleSpec
from ingress.body import read_json_body
from ingress.errors import ApiError, invalid, json_response
from ingress.query import read_limit, read_time, reject_unknown
from ingress.state import State

MAX_HISTORY = 10_000
SQL = load("metrics")


def schedule_name(model_id: uuid.UUID) -> str:
    return f"metrics-{model_id}"


#: the canonical form only: uuid.UUID also reads braces, urn:uuid: and 32 bare digits, which the
#: API does not document (and a model id is written one way everywhere)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _model_id(raw: Any, field: str) -> uuid.UUID:
    if not isinstance(raw, str) or not _UUID.match(raw):
        raise invalid(field, "model_id must be a UUID (8-4-4-4-12 hexadecimal digits)")
    return uuid.UUID(raw)


def _replace(model_id: uuid.UUID, cron: str) -> None:
    spec = ScheduleSpec(name=schedule_name(model_id), cron=cron, command=metrics.Compute(model_id=model_id))
    # one transaction: the original deleted and committed before validating, so a bad
    # cron left a row with no schedule
    with db.pool().connection() as conn, conn.transaction():
        conn.execute(SQL["replace_execution"], {"model_id": model_id, "cron": cron})
        schedules.upsert(conn, spec)


def _remove(model_id: uuid.UUID) -> bool:
    with db.pool().connection() as conn, conn.transaction():
        had_row = conn.execute(SQL["delete_execution"], {"model_id": model_id}).fetchone() is not None
        had_schedule = schedules.delete(schedule_name(model_id), conn)
    return had_row or had_schedule


async def schedule(request: Request) -> Response:
    state: State = request.app.state.switchyard
    raw = await read_json_body(request, state.settings.max_body_bytes)
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as err:
        raise ApiError(400, "malformed_json", str(err)) from None
    if not isinstance(body, dict):
        raise invalid("$", "send an object: {model_id, cron_expression}")
    unknown = set(body) - {"model_id", "cron_expression"}
    if unknown:
        raise invalid(f"$.{sorted(unknown)[0]}", "unknown field")
    model_id = _model_id(body.get("model_id"), "$.model_id")
    cron = body.get("cron_expression")
    if not isinstance(cron, str):
        raise invalid("$.cron_expression", "cron_expression is required, e.g. '*/5 * * * *'")
    try:
        check(cron)
    except ValueError as err:
        raise invalid("$.cron_expression", str(err)) from None
    try:
        await anyio.to_thread.run_sync(_replace, model_id, cron)
    except schedules.BadSchedule as err:  # its cron is the schedule's: named as this API calls it
        raise invalid("$.cron_expression", err.message) from None
    return json_response({"status": "scheduled", "model_id": str(model_id), "schedule": schedule_name(model_id)})


async def unschedule(request: Request) -> Response:
    model_id = _model_id(request.path_params["model_id"], "model_id")
    if not await anyio.to_thread.run_sync(_remove, model_id):
        raise ApiError(404, "not_found", {"model_id": str(model_id)})
    return json_response({"status": "deleted", "model_id": str(model_id)})


async def results(request: Request) -> Response:
    state: State = request.app.state.switchyard
    model_id = _model_id(request.path_params["model_id"], "model_id")
    raw = await state.redis.get(latest_key(model_id))
    if raw is None:
        # the original's body, in our error shape
        raise ApiError(404, "No results found", {"model_id": str(model_id)})
    latest = msgspec.json.decode(raw)
    return json_response({k: latest.get(k) for k in ("model_id", "accuracy", "computed_at", "n")})


def _history(model_id: uuid.UUID, since: dt.datetime, limit: int) -> list[dict[str, Any]]:
    with db.pool().connection() as conn:
        return conn.execute(SQL["history"], {"model_id": model_id, "since": since, "limit": limit}).fetchall()


async def history(request: Request) -> Response:
    model_id = _model_id(request.path_params["model_id"], "model_id")
    q = request.query_params
    reject_unknown(q, {"metric", "since", "limit"})
    metric = q.get("metric")
    if metric is not None and metric not in metrics.MetricName.__args__:  # type: ignore[attr-defined]
        raise invalid("metric", f"one of {', '.join(metrics.MetricName.__args__)}")  # type: ignore[attr-defined]
    since = read_time(q, "since") or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    limit = read_limit(q, 1000, MAX_HISTORY)
    rows = await anyio.to_thread.run_sync(_history, model_id, since, limit)
    points = []
    for row in rows:
        values = row["metrics"] if metric is None else {metric: row["metrics"].get(metric)}
        if metric is not None and values[metric] is None:
            continue  # that computation did not include the metric
        points.append({"computed_at": row["computed_at"], "n": row["n"], "job_id": row["job_id"], "metrics": values})
    return json_response({"model_id": str(model_id), "items": points})


ROUTES = [
    Route("/schedule", schedule, methods=["POST"]),
    Route("/schedule/{model_id}", unschedule, methods=["DELETE"]),
    Route("/results/{model_id}", results, methods=["GET"]),
    Route("/v1/models/{model_id}/metrics", history, methods=["GET"]),
]
