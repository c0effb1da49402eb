"""The local backend: statsforecast models, fitted in a pool of processes.

Forecast, per series:

1. hold out the last ``horizon`` points; fit every configured model (AutoETS and
   AutoTheta by default) on the rest and forecast the holdout;
2. score each model, and their mean (the ensemble), by MASE on the holdout and keep
   the best: that is the series' model, and its holdout MASE and sMAPE are the
   backtest accuracy the job reports;
3. refit the kept model(s) on the whole series, in the form the backtest chose (ETS
   components, Theta variant: a fraction of the cost of a new search), and forecast the
   horizon with prediction intervals for the requested quantiles.

Anomalies, per series: the in-sample one-step-ahead residuals of AutoETS are the scores.

Series are cut into chunks fitted by ``FORECAST_N_JOBS`` processes (spawned once per
worker process and warmed up in the background at start); each finished chunk moves the
job's progress. The processes import statsforecast; the worker's own threads only
hand out numpy arrays, so the GIL is never the limit.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bus import settings
from workers.forecast.accuracy import mase, smape

log = logging.getLogger(__name__)
MODELS = ("AutoETS", "AutoTheta", "AutoARIMA", "AutoCES")
ENSEMBLE = "Ensemble"


# --- what travels to the fitting processes and back (picklable) -------------------------


@dataclass
class ForecastTask:
    series_ids: list[str]
    values: list[np.ndarray]
    horizon: int
    season: int
    levels: list[float]  # interval levels in percent, e.g. [95.0]
    models: tuple[str, ...]


@dataclass
class SeriesForecast:
    series_id: str
    model: str
    mase: float
    smape: float
    mean: np.ndarray
    lower: dict[float, np.ndarray] = field(default_factory=dict)  # level -> bound
    upper: dict[float, np.ndarray] = field(default_factory=dict)


@dataclass
class AnomalyTask:
    series_ids: list[str]
    values: list[np.ndarray]
    season: int


@dataclass
class SeriesScores:
    series_id: str
    scores: np.ndarray


# --- the fitting itself (runs in a pool process) -----------------------------------------


def _model(name: str, season: int, spec: tuple[Any, ...] = ()) -> Any:
    """The model class ``name``; with ``spec``, fixed to the form the backtest selected."""
    from statsforecast import models

    options: dict[str, Any] = {}
    if name == "AutoETS" and spec:
        options = {"model": spec[0], "damped": spec[1]}
    elif name == "AutoTheta" and spec:
        options = {"model": spec[0]}
    return getattr(models, name)(season_length=season, alias=name, **options)


def _spec(name: str, fitted: Any) -> tuple[Any, ...]:
    """The form an automatic model chose (ETS components, Theta variant); () to search again.

    Refitting the chosen form on the whole series costs a fraction of a new search, and the
    form is the one that the backtest measured."""
    try:
        if name == "AutoETS":
            error, trend, season = fitted.model_["method"][4:-1].split(",")
            return (error + trend[0] + season, trend.endswith("d"))
        if name == "AutoTheta":
            return (str(fitted.model_["modeltype"]),)
    except (AttributeError, KeyError, TypeError, ValueError):
        pass
    return ()


def _frame(values: Sequence[np.ndarray], cut: int = 0) -> Any:
    """Long frame statsforecast reads; integer time (freq=1): timestamps are ours to compute."""
    import pandas as pd

    parts = [v[: len(v) - cut] for v in values]
    return pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(len(parts)), [len(p) for p in parts]),
            "ds": np.concatenate([np.arange(len(p)) for p in parts]),
            "y": np.concatenate(parts),
        }
    )


def _fit(name: str, season: int, frame: Any, horizon: int, levels: list[float], spec: tuple[Any, ...] = ()) -> Any:
    from statsforecast import StatsForecast

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sf = StatsForecast(models=[_model(name, season, spec)], freq=1, n_jobs=1)
        return sf.forecast(df=frame, h=horizon, level=levels or None)


def _backtest(names: Sequence[str], season: int, frame: Any, horizon: int) -> tuple[Any, list[list[tuple[Any, ...]]]]:
    """Holdout forecasts of every model, and the form each model chose per series."""
    from statsforecast import StatsForecast

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sf = StatsForecast(models=[_model(n, season) for n in names], freq=1, n_jobs=1)
        sf.fit(df=frame)
        held = sf.predict(h=horizon)
    specs = [[_spec(n, sf.fitted_[i, j]) for j, n in enumerate(names)] for i in range(sf.fitted_.shape[0])]
    return held, specs


def _by_series(result: Any, column: str, count: int, horizon: int) -> np.ndarray:
    """Column of a forecast frame as a (series, horizon) array, series in frame order."""
    return result[column].to_numpy(dtype=np.float64).reshape(count, horizon)


def forecast_chunk(task: ForecastTask) -> list[SeriesForecast]:
    h, n = task.horizon, len(task.values)
    models = list(task.models)
    # 1-2: backtest every model and the ensemble on the last horizon, keep the best per series
    held, specs = _backtest(models, task.season, _frame(task.values, cut=h), h)
    predictions = {m: _by_series(held, m, n, h) for m in models}
    if len(models) > 1:
        predictions[ENSEMBLE] = np.mean([predictions[m] for m in models], axis=0)
    chosen: list[tuple[str, float, float]] = []
    for i, y in enumerate(task.values):
        history, actual = y[:-h], y[-h:]
        scored = []
        for name, predicted in predictions.items():
            p = predicted[i]
            if not np.all(np.isfinite(p)):
                continue
            error = mase(history, actual, p, task.season)
            # a constant history has no MASE scale: rank by sMAPE instead
            rank = error if math.isfinite(error) else smape(actual, p) + 1e6
            scored.append((rank, name != ENSEMBLE, name, error, smape(actual, p)))
        if not scored:
            raise RuntimeError(f"no model could forecast series {task.series_ids[i]!r}")
        _, _, name, error, sym = min(scored)
        chosen.append((name, error, sym))

    # 3: refit what was kept on the whole series, with intervals
    final: dict[str, dict[int, tuple[np.ndarray, dict[float, np.ndarray], dict[float, np.ndarray]]]] = {}
    for j, m in enumerate(models):
        final[m] = {}
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, (name, _, _) in enumerate(chosen):
            if name in (m, ENSEMBLE):
                groups.setdefault(specs[i][j], []).append(i)
        for spec, rows in groups.items():
            frame = _frame([task.values[i] for i in rows])
            try:
                fitted = _fit(m, task.season, frame, h, task.levels, spec)
            except Exception:  # noqa: BLE001 - the form does not fit the whole series: search again
                fitted = _fit(m, task.season, frame, h, task.levels)
            mean = _by_series(fitted, m, len(rows), h)
            lower = {lv: _by_series(fitted, f"{m}-lo-{lv}", len(rows), h) for lv in task.levels}
            upper = {lv: _by_series(fitted, f"{m}-hi-{lv}", len(rows), h) for lv in task.levels}
            for k, i in enumerate(rows):
                final[m][i] = (mean[k], {lv: lower[lv][k] for lv in lower}, {lv: upper[lv][k] for lv in upper})

    out = []
    for i, (name, error, sym) in enumerate(chosen):
        parts = [final[m][i] for m in models if name in (m, ENSEMBLE)]
        out.append(
            SeriesForecast(
                series_id=task.series_ids[i],
                model=name,
                mase=error,
                smape=sym,
                mean=np.mean([p[0] for p in parts], axis=0),
                lower={lv: np.mean([p[1][lv] for p in parts], axis=0) for lv in task.levels},
                upper={lv: np.mean([p[2][lv] for p in parts], axis=0) for lv in task.levels},
            )
        )
    return out


def anomaly_chunk(task: AnomalyTask) -> list[SeriesScores]:
    """Scores: absolute one-step-ahead in-sample residuals of AutoETS."""
    from statsforecast import StatsForecast

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sf = StatsForecast(models=[_model("AutoETS", task.season)], freq=1, n_jobs=1)
        sf.forecast(df=_frame(task.values), h=1, fitted=True)
        fitted = sf.forecast_fitted_values()
    out, at = [], 0
    for sid, y in zip(task.series_ids, task.values, strict=True):
        predicted = fitted["AutoETS"].to_numpy(dtype=np.float64)[at : at + len(y)]
        at += len(y)
        scores = np.abs(y - predicted)
        out.append(SeriesScores(sid, np.where(np.isfinite(scores), scores, 0.0)))
    return out


def _warm() -> bool:
    """First fits pay for imports and compilation: do it before a job needs it."""
    values = [100 + 10 * np.sin(np.arange(48) * np.pi / 6) + np.arange(48) * 0.1]
    forecast_chunk(ForecastTask(["warm"], values, 4, 12, [80.0], MODELS[:2]))
    anomaly_chunk(AnomalyTask(["warm"], values, 12))
    return True


# --- the process pool ----------------------------------------------------------------------

_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def jobs() -> int:
    return settings.get().forecast_n_jobs or os.cpu_count() or 1


def pool() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            # spawn, not fork: forking a threaded worker can copy a held lock into the child
            _pool = ProcessPoolExecutor(max_workers=jobs(), mp_context=multiprocessing.get_context("spawn"))
        return _pool


def _reset() -> None:
    global _pool
    with _lock:
        broken, _pool = _pool, None
    if broken is not None:
        broken.shutdown(wait=False, cancel_futures=True)


def warm_up() -> None:
    """Start the fitting processes and run a small fit in each (call from a background thread)."""
    try:
        for future in [pool().submit(_warm) for _ in range(jobs())]:
            future.result()
        log.info("forecast: %d fitting processes warmed up", jobs())
    except Exception:  # a job starts the pool again and reports any error
        log.exception("forecast: warm-up failed")


def chunks(count: int) -> list[slice]:
    """About eight chunks per process (even load, steady progress), 1..200 series each."""
    size = max(1, min(200, math.ceil(count / (jobs() * 8))))
    return [slice(i, min(i + size, count)) for i in range(0, count, size)]


def run(
    fn: Callable[[Any], list[Any]], tasks: list[Any], sizes: list[int], progress: Callable[[int], None]
) -> list[Any]:
    """Results of ``fn`` over ``tasks`` in task order; ``progress(series_done)`` as chunks finish."""
    try:
        futures: dict[Future[Any], int] = {pool().submit(fn, t): i for i, t in enumerate(tasks)}
    except BrokenProcessPool:
        _reset()
        raise
    results: list[Any] = [None] * len(tasks)
    done_series = 0
    pending = set(futures)
    try:
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                index = futures[future]
                results[index] = future.result()
                done_series += sizes[index]
            progress(done_series)
    except BrokenProcessPool:
        _reset()  # a fitting process died (e.g. out of memory): the next attempt gets a new pool
        raise
    except BaseException:
        # failed, interrupted (time limit, worker shutdown): do not leave the rest running
        for future in pending:
            future.cancel()
        raise
    return [item for chunk in results for item in chunk]
