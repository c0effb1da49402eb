"""The local backend: statsforecast models and drift, combined, fitted in a pool of processes.

Forecast, per series (selection.py has the details):

1. the season: the frequency's, when the series passes the seasonality test;
2. every member (AutoETS, AutoTheta, AutoARIMA, AutoCES: ``FORECAST_MODELS``; and drift)
   searches its form on the whole series and forecasts the horizon;
3. where the history allows two or more origins, rolling-origin cross-validation: each member is
   refit in its form before every origin and forecasts the horizon after it; the ensemble, the
   ensemble weighted by validation error and each member alone are scored by MASE over the
   origins, and the winner is the series' model (the ensemble unless another is clearly better).
   Its validation MASE and sMAPE are the accuracy the job reports, with how many points
   validated it. A shorter series gets the default chosen in advance and no accuracy;
4. prediction intervals from the chosen forecast's validation errors (intervals.py).

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
from workers.forecast import compile_cache, intervals, members, selection

log = logging.getLogger(__name__)
MODELS = members.AUTOMATIC


# --- what travels to the fitting processes and back (picklable) -------------------------


@dataclass
class ForecastTask:
    series_ids: list[str]
    values: list[np.ndarray]
    horizon: int
    season: int  # the frequency's season length (1: none)
    levels: list[float]  # interval levels in percent, e.g. [95.0]
    models: tuple[str, ...]  # statsforecast members; drift is always one


@dataclass
class SeriesForecast:
    series_id: str
    model: str  # Ensemble, WeightedEnsemble or a member's name
    selection: str  # "cross-validation over N origins" | "default for short series"
    validated_points: int  # forecast points the accuracy was measured on (0: none)
    mase: float | None  # on the validation points; None when none were measured
    smape: float | None
    mean: np.ndarray
    weights: dict[str, float] = field(default_factory=dict)  # member -> weight (sums to 1)
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


def _model(name: str, season: int) -> Any:
    from statsforecast import models

    return getattr(models, name)(season_length=season, alias=name)


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


def forecast_series(
    series_id: str, y: np.ndarray, h: int, season: int, levels: list[float], models: Sequence[str]
) -> SeriesForecast:
    names = [*models, members.DRIFT]
    full = selection.forecast_members(y, h, season, names)
    if not full.means:  # drift always forecasts: only a broken series gets here
        raise RuntimeError(f"no model could forecast series {series_id!r}")
    choice = selection.choose(y, h, season, full)
    mean = selection.combine(full.means, choice.weights)
    if mean is None:  # the chosen members failed on the whole series: the ensemble of the others
        choice.model, choice.weights = selection.ENSEMBLE, {k: 1.0 for k in full.means}
        mean = selection.combine(full.means, choice.weights)
    assert mean is not None
    lower, upper = intervals.bounds(y, mean, levels, choice.errors, season)
    total = sum(w for k, w in choice.weights.items() if k in full.means)
    return SeriesForecast(
        series_id=series_id,
        model=choice.model,
        selection=choice.selection,
        validated_points=choice.validated_points,
        mase=choice.mase,
        smape=choice.smape,
        mean=mean,
        weights={k: round(w / total, 4) for k, w in choice.weights.items() if k in full.means},
        lower=lower,
        upper=upper,
    )


def forecast_chunk(task: ForecastTask) -> list[SeriesForecast]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [
            forecast_series(sid, y, task.horizon, task.season, task.levels, task.models)
            for sid, y in zip(task.series_ids, task.values, strict=True)
        ]


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
    forecast_chunk(ForecastTask(["warm"], values, 4, 12, [80.0], MODELS))
    forecast_chunk(ForecastTask(["warm"], [values[0][:20]], 4, 1, [80.0], MODELS))
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
            # the processes read the compile cache's environment as they start
            compile_cache.enable(settings.get().forecast_compile_cache)
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
