"""Forecasts: per series the history, the mean and the quantile band; anomalies marked on the series.

The points come from GET /v1/forecasts/{job_id} itself (the same handler, the same pages of series);
the history of a forecast is the series the command sent inline (a SQL or GoodData source is read by
the worker and not kept, so such a chart shows the forecast alone).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from bus.jobstore import BadCursor, JobFilter
from contracts.forecast import parse_start
from ingress.errors import ApiError, json_response
from ingress.routes import forecasts as forecasts_api
from ingress.ui import queries
from ingress.ui.jobs import PAGE_SIZE
from ingress.ui.web import SECURITY_HEADERS, error_page, page, render, state_of

#: series drawn per page (each its own chart); more are a "next" link away
SERIES_PER_PAGE = 12
#: the history drawn before a forecast: its newest points
HISTORY_POINTS = 500
TYPES = forecasts_api.TYPES


#: a small example to start a new forecast from (the operator edits it on the Submit form)
EXAMPLE = {
    "source": {
        "kind": "inline",
        "series": [
            {"series_id": "sales", "start": "2026-01-01", "freq": "D", "values": [12, 14, 13, 15, 16, 18, 17] * 3}
        ],
    },
    "prediction_length": 7,
}


@page
async def forecast_list(request: Request) -> Response:
    """The newest forecast and anomaly jobs (the forecast queue's jobs, from the job listing's indexes)."""
    state = state_of(request)
    cursor = request.query_params.get("cursor") or None
    try:
        jobs, next_cursor = await state.jobs.list(JobFilter(queue="forecast"), limit=PAGE_SIZE, cursor=cursor)
    except BadCursor as err:
        return error_page(request, 422, "Bad cursor", f"cursor: {err}")
    async with state.pool.connection() as conn:
        rows = await (await conn.execute(queries.FORECAST_SUMMARIES, {"job_ids": [j.id for j in jobs]})).fetchall()
    summaries = {r["job_id"]: r for r in rows}
    return render(
        request,
        "forecasts.html",
        jobs=jobs,
        summaries=summaries,
        next_cursor=next_cursor,
        first=cursor is None,
        example=EXAMPLE,
    )


@page
async def forecast_page(request: Request) -> Response:
    state = state_of(request)
    job_id = request.path_params["job_id"]
    job = await state.jobs.get(job_id) if len(job_id) <= 64 else None
    if job is None or job.type not in TYPES:
        message = "There is no such job." if job is None else f"Job {job.id} is a {job.type}, not a forecast."
        return error_page(request, 404, "Not found", message)
    cursor = request.query_params.get("cursor", "")[:400]
    return render(request, "forecast.html", job=job, cursor=cursor)


def _history(command: dict[str, Any], series_id: str, first: dt.datetime | None) -> list[list[float]]:
    """[[epoch seconds, value]]: the inline series, spread evenly from its start to the first forecast
    point (exact for a fixed frequency, close enough to draw for months and quarters)."""
    source = command.get("source") or {}
    if source.get("kind") != "inline" or first is None:
        return []
    found = next((s for s in source.get("series", []) if s.get("series_id", "series") == series_id), None)
    if not found or not found.get("values"):
        return []
    try:
        start = parse_start(found["start"])
    except (ValueError, KeyError):
        return []
    values = found["values"]
    step = (first - start).total_seconds() / len(values)
    if step <= 0:
        return []
    begin = max(0, len(values) - HISTORY_POINTS)
    return [[start.timestamp() + i * step, values[i]] for i in range(begin, len(values))]


@page
async def forecast_data(request: Request) -> Response:
    """The charts' data: the API's answer for one page of series, plus each forecast's history."""
    state = state_of(request)
    q = request.query_params
    try:
        # the API's own checks and answer, with the job read once for both
        limit = forecasts_api.page_size(q)
        job = await forecasts_api.forecast_job(state, request.path_params["job_id"])
        body = await forecasts_api.forecast_body(state, job, q, limit)
    except ApiError as err:
        return json_response({"error": err.error, "detail": err.message}, err.status, headers=SECURITY_HEADERS)
    command = msgspec.to_builtins(job.command)
    charts = []
    for item in body["series"]:
        chart: dict[str, Any] = {"series_id": item["series_id"], "model": item["model"], "backend": item["backend"]}
        if "forecast" in item:
            points = item["forecast"]
            first = points[0]["ts"] if points else None
            chart["history"] = _history(command, item["series_id"], first)
            chart["forecast"] = [
                {"t": p["ts"].timestamp(), "mean": p["mean"], "quantiles": p["quantiles"] or {}} for p in points
            ]
            chart["accuracy"] = item["accuracy"]
            chart["selection"] = item["selection"]
        else:
            chart["scores"] = [
                {
                    "t": p["ts"].timestamp(),
                    "value": p["value"],
                    "score": p["score"],
                    "anomaly": p["anomaly"],
                }
                for p in item["scores"]
            ]
            chart["threshold"] = item["threshold"]
            chart["anomalies"] = item["anomalies"]
        charts.append(chart)
    result = {"job_id": body["job_id"], "type": body["type"], "status": body["status"], "charts": charts}
    result["next_cursor"] = body["next_cursor"]
    return json_response(result, headers=SECURITY_HEADERS)
