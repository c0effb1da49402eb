"""Shapes shared by both backends: quantile levels, stored rows, the job's result."""

from __future__ import annotations

import collections
import math
from typing import Any

import numpy as np

from workers.forecast.frames import SeriesData
from workers.forecast.store import SeriesRow, finite

#: the job result lists at most this many series (all of them are in GET /v1/forecasts/{id})
RESULT_SERIES = 1000
#: and at most this many flagged points per series
RESULT_FLAGS = 100


def key(quantile: float) -> str:
    return format(quantile, "g")


def level(quantile: float) -> float:
    """The central interval (percent) whose bound is the quantile: 0.025 and 0.975 -> 95.0."""
    return round(abs(1 - 2 * quantile) * 100, 6)


def levels(quantiles: list[float]) -> list[float]:
    return sorted({level(q) for q in quantiles if q != 0.5})


def quantile_values(
    quantiles: list[float], mean: np.ndarray, lower: dict[float, np.ndarray], upper: dict[float, np.ndarray]
) -> list[dict[str, float]]:
    """Per step: {"0.025": ..., "0.5": ..., "0.975": ...}; 0.5 of a symmetric interval is the mean."""
    columns = {}
    for q in sorted(quantiles):
        if q == 0.5:
            columns[key(q)] = mean
        else:
            columns[key(q)] = (lower if q < 0.5 else upper)[level(q)]
    return [{k: float(v[i]) for k, v in columns.items()} for i in range(len(mean))]


def _mean(values: list[float | None]) -> float | None:
    finite_values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite_values)) if finite_values else None


def _kind(selection: str | None) -> str:
    """ "cross-validation over 3 origins" -> "cross-validation" (the job's tally)."""
    return (selection or "holdout").split(" over ")[0]


def _series(r: SeriesRow) -> dict[str, Any]:
    item: dict[str, Any] = {
        "series_id": r.series_id,
        "model": r.model,
        "mase": finite(r.mase),
        "smape": finite(r.smape),
    }
    if r.selection is not None:
        item |= {"selection": r.selection, "validated_points": r.validated_points, "weights": r.weights}
    return item


def forecast_result(
    job_id: str, backend: str, horizon: int, quantiles: list[float], rows: list[SeriesRow]
) -> dict[str, Any]:
    return {
        "backend": backend,
        "series": len(rows),
        "horizon": horizon,
        "quantiles": sorted(quantiles),
        # measured on points the series' model did not see (local: its validation; sagemaker: the
        # held-out last horizon), averaged over the series where something was measured
        "accuracy": {
            "mase": _mean([r.mase for r in rows]),
            "smape": _mean([r.smape for r in rows]),
            "series_measured": sum(1 for r in rows if finite(r.mase) is not None or finite(r.smape) is not None),
        },
        "models": dict(collections.Counter(r.model for r in rows).most_common()),
        "selection": dict(collections.Counter(_kind(r.selection) for r in rows).most_common()),
        "per_series": [_series(r) for r in rows[:RESULT_SERIES]],
        "per_series_truncated": len(rows) > RESULT_SERIES,
        "results": f"/v1/forecasts/{job_id}",
    }


def flag(scores: np.ndarray, sigma: float) -> tuple[float, np.ndarray]:
    """The default rule: a score above mean + sigma * std of the series' scores is an anomaly."""
    threshold = float(np.mean(scores) + sigma * np.std(scores))
    return threshold, scores > threshold


def anomaly_rows(
    series: SeriesData, scores: np.ndarray, sigma: float, backend: str, model: str
) -> tuple[SeriesRow, list[tuple[str, Any, float | None, float, bool]], list[str]]:
    """(series row, anomalies rows, flagged timestamps as ISO text)."""
    threshold, flags = flag(scores, sigma)
    stamps = series.timestamps()
    points = [
        (series.series_id, ts.to_pydatetime(), float(v), float(s), bool(f))
        for ts, v, s, f in zip(stamps, series.values, scores, flags, strict=True)
    ]
    flagged = [ts.isoformat().replace("+00:00", "Z") for ts in stamps[flags]]
    row = SeriesRow(
        series.series_id, "anomalies", backend, model, len(series), threshold=threshold, anomalies=len(flagged)
    )
    return row, points, flagged


def anomalies_result(
    job_id: str, backend: str, sigma: float, rows: list[SeriesRow], flagged: dict[str, list[str]]
) -> dict[str, Any]:
    return {
        "backend": backend,
        "series": len(rows),
        "points": sum(r.points for r in rows),
        "anomalies": sum(r.anomalies or 0 for r in rows),
        #: whether any point was flagged: what a rule matches on (`"match": {"flagged": true}`)
        "flagged": any(r.anomalies for r in rows),
        "rule": f"score > mean + {sigma:g} * std of the series' scores",
        "per_series": [
            {
                "series_id": r.series_id,
                "threshold": r.threshold,
                "anomalies": r.anomalies,
                "flagged": flagged[r.series_id][:RESULT_FLAGS],
            }
            for r in rows[:RESULT_SERIES]
        ],
        "per_series_truncated": len(rows) > RESULT_SERIES,
        "results": f"/v1/forecasts/{job_id}",
    }
