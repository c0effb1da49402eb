"""Forecast and anomaly jobs on the local backend: load, validate, fit in chunks, store."""

from __future__ import annotations

from typing import Any

from bus import settings
from bus.errors import PermanentError
from contracts import forecast
from workers.actors import JobContext
from workers.forecast import frames, local, results, sources, store
from workers.forecast.frames import SeriesData


def configured_models() -> tuple[str, ...]:
    names = tuple(n.strip() for n in settings.get().forecast_models.split(",") if n.strip())
    unknown = [n for n in names if n not in local.MODELS]
    if not names or unknown:
        raise PermanentError(f"FORECAST_MODELS: {unknown or 'empty'}; choose from {', '.join(local.MODELS)}")
    return names


def season(series: SeriesData) -> int:
    """The frequency's season length (the fit decides per series whether the data has it)."""
    return frames.SEASON[series.freq]


def _reporter(job: JobContext, total: int, start: float, span: float) -> Any:
    def report(done: int) -> None:
        job.progress(start + span * done / total, f"{done} of {total} series")

    return report


def anomaly_season(series: SeriesData) -> int:
    """AutoETS scores a season it sees twice; a shorter series is scored without one."""
    m = frames.SEASON[series.freq]
    return m if len(series) >= 2 * m else 1


def _batches(series: list[SeriesData], season_of: Any = season) -> list[tuple[int, list[int]]]:
    """(season, series indexes) chunks: one season per chunk, sized for the pool."""
    by_season: dict[int, list[int]] = {}
    for i, s in enumerate(series):
        by_season.setdefault(season_of(s), []).append(i)
    out = []
    for m, indexes in by_season.items():
        for part in local.chunks(len(indexes)):
            out.append((m, indexes[part]))
    return out


def fit_forecasts(
    series: list[SeriesData],
    horizon: int,
    quantiles: list[float],
    context_length: int | None = None,
    progress: Any = lambda done: None,
    models: tuple[str, ...] | None = None,
) -> list[local.SeriesForecast]:
    """Validate, choose and forecast every series in the fitting processes (the bench calls this too)."""
    h = horizon
    values = [s.values[-context_length:] if context_length else s.values for s in series]
    batches = _batches(series)
    levels = results.levels(quantiles)
    names = models or configured_models()
    tasks = [
        local.ForecastTask([series[i].series_id for i in idx], [values[i] for i in idx], h, m, levels, names)
        for m, idx in batches
    ]
    return local.run(local.forecast_chunk, tasks, [len(idx) for _, idx in batches], progress)


def run_forecast(command: forecast.Forecast, job: JobContext) -> dict[str, Any]:
    job.progress(0, "reading the series")
    series = sources.load(command.source)
    h = command.prediction_length
    frames.require_complete(series)
    frames.require_length(series, forecast.min_length(h), "a forecast")
    configured_models()  # a bad FORECAST_MODELS fails before any fitting
    report = _reporter(job, len(series), 5, 85)
    fitted = fit_forecasts(series, h, command.quantiles, command.context_length, report)
    job.progress(90, "saving the forecasts")
    by_id = {s.series_id: s for s in series}
    rows, points = [], []
    for f in sorted(fitted, key=lambda f: f.series_id):
        s = by_id[f.series_id]
        rows.append(
            store.SeriesRow(
                f.series_id,
                "forecast",
                "local",
                f.model,
                len(s),
                mase=f.mase,
                smape=f.smape,
                selection=f.selection,
                validated_points=f.validated_points,
                weights=f.weights,
            )
        )
        quantiles = results.quantile_values(command.quantiles, f.mean, f.lower, f.upper)
        for ts, mean, q in zip(s.future(h), f.mean, quantiles, strict=True):
            points.append((f.series_id, ts.to_pydatetime(), float(mean), q))
    store.save(job.id, rows, forecasts=points)
    return results.forecast_result(job.id, "local", h, command.quantiles, rows)


def run_anomalies(command: forecast.Anomalies, job: JobContext) -> dict[str, Any]:
    job.progress(0, "reading the series")
    series = sources.load(command.source)
    frames.require_complete(series)
    frames.require_length(series, forecast.MIN_ANOMALY_POINTS, "anomaly scoring")
    batches = _batches(series, anomaly_season)
    tasks = [
        local.AnomalyTask([series[i].series_id for i in idx], [series[i].values for i in idx], m) for m, idx in batches
    ]
    scored = local.run(local.anomaly_chunk, tasks, [len(idx) for _, idx in batches], _reporter(job, len(series), 5, 85))
    job.progress(90, "saving the scores")
    by_id = {s.series_id: s for s in series}
    rows, points, flagged = [], [], {}
    for item in sorted(scored, key=lambda s: s.series_id):
        row, series_points, series_flags = results.anomaly_rows(
            by_id[item.series_id], item.scores, command.threshold_sigma, "local", "AutoETS residuals"
        )
        rows.append(row)
        points.extend(series_points)
        flagged[item.series_id] = series_flags
    store.save(job.id, rows, anomalies=points)
    return results.anomalies_result(job.id, "local", command.threshold_sigma, rows, flagged)
