"""Models: the metric history of a model as a chart, with the alert thresholds of its schedules."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import Response

from ingress.errors import json_response
from ingress.ui import queries
from ingress.ui.web import SECURITY_HEADERS, error_page, page, render, state_of

#: points on the chart: the newest computations of the model
HISTORY_POINTS = 1000
MODELS_SHOWN = 200
#: computations listed on a model's page under its chart
LATEST_SHOWN = 20


def _model_id(request: Request) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.path_params["model_id"])
    except ValueError:
        return None


def _threshold(alert: dict[str, Any]) -> tuple[str, float] | None:
    for direction in ("below", "above"):
        if alert.get(direction) is not None:
            return direction, float(alert[direction])
    return None


async def _alerts(conn: psycopg.AsyncConnection[Any], model_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await (await conn.execute(queries.MODEL_ALERTS, {"model_id": str(model_id)})).fetchall()
    alerts = []
    for row in rows:
        found = _threshold(row["alert"] or {})
        if found is None:
            continue
        # the webhook URL is a secret: never on the page
        alerts.append(
            {
                "schedule": row["name"],
                "metric": row["alert"].get("metric"),
                "direction": found[0],
                "threshold": found[1],
                "state": row["alert_state"],
                "enabled": row["enabled"],
            }
        )
    return alerts


@page
async def model_list(request: Request) -> Response:
    async with state_of(request).pool.connection() as conn:
        models = await (await conn.execute(queries.MODELS, {"limit": MODELS_SHOWN})).fetchall()
    for model in models:
        model["headline"] = headline(model["metrics"] or {})
    return render(request, "models.html", models=models)


#: the metric a model's row shows, the first its latest computation has (classifiers, then regressors)
HEADLINE = ("accuracy", "f1", "r2", "mae")


def headline(metrics: dict[str, Any]) -> tuple[str, float] | None:
    for name in HEADLINE:
        value = metrics.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return name, float(value)
    return None


@page
async def model_page(request: Request) -> Response:
    model_id = _model_id(request)
    if model_id is None:
        return error_page(request, 404, "Not found", "A model id is a UUID.")
    async with state_of(request).pool.connection() as conn:
        # the page lists the newest few; the chart fetches its points from /data
        latest = await (await conn.execute(queries.HISTORY, {"model_id": model_id, "limit": LATEST_SHOWN})).fetchall()
        alerts = await _alerts(conn, model_id)
    return render(request, "model.html", model_id=str(model_id), latest=latest, alerts=alerts)


@page
async def model_data(request: Request) -> Response:
    """The chart's data: x in epoch seconds (oldest first), one series per metric, threshold lines."""
    model_id = _model_id(request)
    if model_id is None:
        return json_response({"error": "not_found", "detail": "a model id is a UUID"}, 404, headers=SECURITY_HEADERS)
    async with state_of(request).pool.connection() as conn:
        rows = await (await conn.execute(queries.HISTORY, {"model_id": model_id, "limit": HISTORY_POINTS})).fetchall()
        thresholds = await _alerts(conn, model_id)
    rows.reverse()
    names = sorted({name for row in rows for name, value in row["metrics"].items() if isinstance(value, int | float)})
    series = [{"label": name, "values": [_number(row["metrics"].get(name)) for row in rows]} for name in names]
    body = {
        "model_id": str(model_id),
        "x": [row["computed_at"].timestamp() for row in rows],
        "series": series,
        "thresholds": thresholds,
    }
    return json_response(body, headers=SECURITY_HEADERS)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
