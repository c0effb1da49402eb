"""Prediction intervals sized by the errors forecasts made in validation.

Every validation error is put on a common scale: divided by its history's MASE scale (the mean
absolute step, at the season's lag when two seasons are there) and by the square root of its
step ahead. The interval of a level is the forecast plus or minus that level's quantile of
the scaled absolute errors, times the series' own scale and the step's square root: a
conformal interval whose errors come from every step of the horizon.

The errors are those of the latest origin, whose history is the closest to the whole series:
earlier origins have shorter histories and larger errors, and pooling them made the intervals
too wide (bench/RESULTS-forecast.md). A series' own errors are few (a horizon), so their
quantile is blended with a prior with the weight of ``PRIOR_POINTS`` errors; a series without
validation (the short-series default) gets the prior alone. The prior is the same quantile of
the scaled errors of the ensemble at the latest origin over every series of the frequency in
the benchmark (its validation windows, not the held-out futures the coverage is then measured
on); a frequency the benchmark has no series of gets a random walk's.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from workers.forecast.accuracy import scale

#: the prior counts as this many of a series' own validation errors
PRIOR_POINTS = 20
#: quantiles of the scaled absolute validation errors at levels 50, 80, 90, 95 and 99 %, per
#: season length, measured on the benchmark's validation windows at the latest origin (yearly,
#: quarterly, monthly, daily series: 700 to 1,700 errors each)
PRIOR_LEVELS = (50.0, 80.0, 90.0, 95.0, 99.0)
PRIOR = {
    1: (1.13, 2.45, 3.67, 4.97, 10.49),
    4: (0.43, 0.96, 1.37, 1.88, 3.74),
    12: (0.24, 0.60, 1.15, 1.98, 3.69),
    7: (0.26, 0.61, 0.89, 1.19, 2.58),
}
#: a random walk's error is normal with a standard deviation of sqrt(pi / 2) mean absolute steps
_WALK = math.sqrt(math.pi / 2)


def _z(level: float) -> float:
    return float(norm.ppf(0.5 + level / 200))


def prior(level: float, season: int) -> float:
    """The prior's half-width of the ``level`` % interval, in scales, at step 1: the measured
    quantiles interpolated (and extrapolated) linearly in the normal quantile of the level."""
    measured = PRIOR.get(season)
    if measured is None:
        return _WALK * _z(level)
    zs = [_z(lv) for lv in PRIOR_LEVELS]
    z = _z(level)
    if z <= zs[0]:
        return measured[0] * z / zs[0]
    k = min(max(int(np.searchsorted(zs, z)) - 1, 0), len(zs) - 2)
    slope = (measured[k + 1] - measured[k]) / (zs[k + 1] - zs[k])
    return max(0.0, measured[k] + slope * (z - zs[k]))


def scaled_errors(errors: list[tuple[np.ndarray, np.ndarray]], season: int) -> np.ndarray:
    """Absolute errors over their history's scale and the square root of their step."""
    out = []
    for history, error in errors:
        s = scale(history, season)
        if math.isfinite(s) and s > 0:
            out.append(np.abs(error) / (s * np.sqrt(np.arange(1, len(error) + 1))))
    return np.concatenate(out) if out else np.empty(0)


def width(level: float, scaled: np.ndarray, season: int) -> float:
    """Half-width of the ``level`` % interval in scales (at step 1)."""
    assumed = prior(level, season)
    if len(scaled) == 0:
        return assumed
    measured = float(np.quantile(scaled, level / 100))
    return (len(scaled) * measured + PRIOR_POINTS * assumed) / (len(scaled) + PRIOR_POINTS)


def bounds(
    y: np.ndarray,
    mean: np.ndarray,
    levels: list[float],
    errors: list[tuple[np.ndarray, np.ndarray]],
    season: int,
) -> tuple[dict[float, np.ndarray], dict[float, np.ndarray]]:
    """Lower and upper bounds per level (percent) around ``mean``."""
    s = scale(y, season)
    if not math.isfinite(s):  # a constant series: a sliver around it
        s = float(np.mean(np.abs(y))) * 1e-3 or 1e-3
    steps = np.sqrt(np.arange(1, len(mean) + 1))
    scaled = scaled_errors(errors, season)
    lower, upper = {}, {}
    for level in levels:
        half = width(level, scaled, season) * s * steps
        lower[level], upper[level] = mean - half, mean + half
    return lower, upper
