"""Forecast accuracy on held-out points: MASE and sMAPE (the M4 competition's definitions)."""

from __future__ import annotations

import numpy as np


def scale(history: np.ndarray, season: int) -> float:
    """MASE's denominator: the in-sample mean absolute error of the seasonal naive forecast
    (lag ``season``; lag 1 when the history is shorter than two seasons); NaN when constant."""
    lag = season if season > 1 and len(history) > 2 * season else 1
    if len(history) <= lag:
        return float("nan")
    s = float(np.mean(np.abs(history[lag:] - history[:-lag])))
    return s if np.isfinite(s) and s > 0 else float("nan")


def mase(history: np.ndarray, actual: np.ndarray, predicted: np.ndarray, season: int) -> float:
    """Mean absolute error over ``scale(history, season)``: 1.0 means as good as seasonal naive
    in sample; NaN when the history is constant."""
    return float(np.mean(np.abs(actual - predicted)) / scale(history, season))


def smape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Symmetric MAPE in percent, 0..200; a point where both are 0 counts as exact."""
    denominator = np.abs(actual) + np.abs(predicted)
    ratio = np.divide(
        2 * np.abs(actual - predicted), denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    return float(100 * np.mean(ratio))
