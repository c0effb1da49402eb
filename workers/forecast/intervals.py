"""Prediction intervals sized by the errors the chosen forecast made in validation.

Every validation error is put on a common scale: divided by its history's MASE scale (the mean
absolute step, at the season's lag when two seasons are there) and by the square root of its
step ahead (errors of a random walk grow so). The interval of a level is the forecast plus or
minus that level's quantile of the scaled absolute errors, times the series' own scale and
the step's square root: a conformal interval whose errors come from several origins and all
steps of the horizon, so a handful of origins gives enough of them. The quantile is blended
with the random walk's (``PRIOR``: a normal error of standard deviation 1.25 scales, what a
random walk's step is in mean-absolute-step units) with the weight of ``PRIOR_POINTS`` errors,
so few errors do not make a short interval; a series without validation gets the prior alone.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from workers.forecast.accuracy import scale

#: the prior's standard deviation in scales: sqrt(pi / 2), a random walk's
PRIOR = math.sqrt(math.pi / 2)
#: the prior counts as this many validation errors
PRIOR_POINTS = 10


def scaled_errors(errors: list[tuple[np.ndarray, np.ndarray]], season: int) -> np.ndarray:
    """Absolute errors over their history's scale and the square root of their step."""
    out = []
    for history, error in errors:
        s = scale(history, season)
        if math.isfinite(s) and s > 0:
            out.append(np.abs(error) / (s * np.sqrt(np.arange(1, len(error) + 1))))
    return np.concatenate(out) if out else np.empty(0)


def width(level: float, scaled: np.ndarray) -> float:
    """Half-width of the ``level`` % interval in scales (at step 1)."""
    prior = PRIOR * float(norm.ppf(0.5 + level / 200))
    if len(scaled) == 0:
        return prior
    rank = min(1.0, math.ceil((len(scaled) + 1) * level / 100) / len(scaled))  # conformal correction
    measured = float(np.quantile(scaled, rank))
    return (len(scaled) * measured + PRIOR_POINTS * prior) / (len(scaled) + PRIOR_POINTS)


def bounds(
    y: np.ndarray,
    mean: np.ndarray,
    levels: list[float],
    errors: list[tuple[np.ndarray, np.ndarray]],
    season: int,
) -> tuple[dict[float, np.ndarray], dict[float, np.ndarray]]:
    """Lower and upper bounds per level (percent) around ``mean``."""
    s = scale(y, season)
    if not math.isfinite(s) or s == 0:  # a constant series: its spread is what validation saw, else none
        s = float(np.mean(np.abs(y))) * 1e-3 if np.any(y) else 1e-3
    steps = np.sqrt(np.arange(1, len(mean) + 1))
    scaled = scaled_errors(errors, season)
    lower, upper = {}, {}
    for level in levels:
        half = width(level, scaled) * s * steps
        lower[level], upper[level] = mean - half, mean + half
    return lower, upper
