"""The forecast pool's results and the cancellation of its SageMaker runs.

GET /v1/forecasts/{job_id}: the job's status and, once it succeeded, its series (model, how it
was chosen, its measured accuracy, or the anomaly threshold) with their points, a page of series
at a time.
POST /v1/forecasts/{job_id}/cancel: a queued job is cancelled at once; a running SageMaker
job stops at its next step (training job stopped, endpoint deleted) and ends ``cancelled``;
any other running or retrying one as ``POST /v1/jobs/{job_id}/cancel`` does it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus import queries
from contracts import Job
from ingress.errors import ApiError, invalid, json_response
from ingress.query import read_limit, reject_unknown
from ingress.state import State

MAX_LIMIT = 1000
TYPES = ("forecast.forecast", "forecast.anomalies")


def _sql() -> dict[str, str]:
    return queries.load("forecasts")


async def forecast_job(state: State, job_id: str) -> Job:
    job = await state.jobs.get(job_id) if len(job_id) <= 64 else None
    if job is None or job.type not in TYPES:
        message = "no such job" if job is None else f"job is a {job.type}, not a forecast or anomalies job"
        raise ApiError(404, "not_found", {"job_id": job_id[:64], "message": message})
    return job


def _cursor(series_id: str) -> str:
    return base64.urlsafe_b64encode(series_id.encode()).decode().rstrip("=")


def _after(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise invalid("cursor", "not a cursor this API returned") from None


async def get_forecast(request: Request) -> Response:
    state: State = request.app.state.switchyard
    q = request.query_params
    limit = page_size(q)
    job = await forecast_job(state, request.path_params["job_id"])
    return json_response(await forecast_body(state, job, q, limit))


def page_size(q: Mapping[str, str]) -> int:
    """The page size of a forecast's series, once the whole query string is checked (422 otherwise)."""
    reject_unknown(q, {"series_id", "limit", "cursor", "flagged"})
    limit = read_limit(q, 100, MAX_LIMIT)
    if q.get("flagged", "false") not in ("true", "false"):
        raise invalid("flagged", "true or false")
    return limit


async def forecast_body(state: State, job: Job, q: Mapping[str, str], limit: int) -> dict[str, Any]:
    """One page of a forecast job's series with their points (the API's answer; the dashboard's charts)."""
    body: dict[str, Any] = {"job_id": job.id, "type": job.type, "status": job.status, "progress": job.progress}
    params = {
        "job_id": job.id,
        "after": _after(q["cursor"]) if "cursor" in q else "",
        "series_id": q.get("series_id"),
        "limit": limit + 1,
    }
    async with state.pool.connection() as conn:
        series = await (await conn.execute(_sql()["series_page"], params)).fetchall()
        more = len(series) > limit
        series = series[:limit]
        ids = [s["series_id"] for s in series]
        if job.type == "forecast.forecast":
            points = await (await conn.execute(_sql()["forecast_points"], {"job_id": job.id, "series": ids})).fetchall()
        else:
            flagged_only = q.get("flagged") == "true"
            points = await (
                await conn.execute(
                    _sql()["anomaly_points"], {"job_id": job.id, "series": ids, "flagged_only": flagged_only}
                )
            ).fetchall()
    by_series: dict[str, list[dict[str, Any]]] = {sid: [] for sid in ids}
    for p in points:
        sid = p.pop("series_id")
        if "is_anomaly" in p:
            p["anomaly"] = p.pop("is_anomaly")
        by_series[sid].append(p)
    body["series"] = []
    for s in series:
        item = {"series_id": s["series_id"], "backend": s["backend"], "model": s["model"], "points_seen": s["points"]}
        if s["kind"] == "forecast":
            accuracy = {"mase": s["mase"], "smape": s["smape"], "validated_points": s["validated_points"]}
            item |= {"selection": s["selection"], "weights": s["weights"], "accuracy": accuracy}
            item["forecast"] = by_series[s["series_id"]]
        else:
            item |= {"threshold": s["threshold"], "anomalies": s["anomalies"], "scores": by_series[s["series_id"]]}
        body["series"].append(item)
    body["next_cursor"] = _cursor(ids[-1]) if more else None
    return body


async def cancel_forecast(request: Request) -> Response:
    state: State = request.app.state.switchyard
    job = await forecast_job(state, request.path_params["job_id"])
    if job.status == "queued":
        cancelled = await state.jobs.transition("cancel", job.id)
        if cancelled is not None:
            return json_response(cancelled)
    async with state.pool.connection() as conn:
        run = await (await conn.execute(_sql()["run_cancel"], {"job_id": job.id})).fetchone()
    if run is None:
        # no SageMaker run: the job's own cancel (a running local forecast stops at its next progress)
        moved = await state.jobs.transition("cancel", job.id)
        if moved is not None:
            return json_response(moved, 200 if moved.status == "cancelled" else 202)
        raise ApiError(
            409,
            "conflict",
            {
                "job_id": job.id,
                "status": job.status,
                "message": "only a queued, running or retrying (failed) job can be cancelled",
            },
        )
    message = "the SageMaker run stops at its next step; the job then ends cancelled"
    return json_response({"job_id": job.id, "status": job.status, "cancel": "requested", "message": message}, 202)


ROUTES = [
    Route("/v1/forecasts/{job_id}", get_forecast, methods=["GET"]),
    Route("/v1/forecasts/{job_id}/cancel", cancel_forecast, methods=["POST"]),
]
