"""Seasonality: is there any, and the series with it taken out and put back.

The season length comes from the frequency (``frames.SEASON``: 12 for months, 7 for days ...).
A series is seasonal when it holds two full seasons and either its autocorrelation at the
season's lag passes the test the Theta method uses (90 %, two-sided, Bartlett's standard
error; the M4 competition's benchmarks take it too) or its steps differ by position in the
season (one-way analysis of variance of the first differences, 1 %): the first test misses
the season of a short trending series (two years of monthly data), the second does not. A
seasonal series is divided by (or, if it has a
value <= 0, less) the seasonal indices of a classical decomposition; the models forecast
what remains and the forecast gets the indices back. Two seasons suffice for this, where a
seasonal state-space model would need more history than a short series has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the autocorrelation test's critical value: the normal distribution's 95 % quantile (90 % two-sided)
CRITICAL = 1.6448536269514722
#: the analysis of variance's significance level
STEPS_LEVEL = 0.01


def autocorrelations(y: np.ndarray, lags: int) -> np.ndarray:
    """Sample autocorrelations at lags 1..``lags``."""
    centred = y - y.mean()
    total = float(np.dot(centred, centred))
    return np.array([np.dot(centred[k:], centred[:-k]) / total for k in range(1, lags + 1)])


def _steps_differ(y: np.ndarray, season: int) -> bool:
    """One-way ANOVA of the first differences grouped by their position in the season."""
    from scipy.stats import f_oneway

    steps = np.diff(y)
    positions = np.arange(1, len(y)) % season
    groups = [steps[positions == p] for p in range(season)]
    if min(len(g) for g in groups) < 1 or np.ptp(steps) == 0:
        return False
    with np.errstate(all="ignore"):
        p_value = f_oneway(*groups).pvalue
    return bool(np.isfinite(p_value) and p_value < STEPS_LEVEL)


def is_seasonal(y: np.ndarray, season: int) -> bool:
    """Two full seasons, and a significant autocorrelation at lag ``season`` or steps that
    depend on the position in the season."""
    if season < 2 or len(y) < 2 * season or np.ptp(y) == 0:
        return False
    r = autocorrelations(y, season)
    limit = np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / len(y))
    return bool(abs(r[-1]) > CRITICAL * limit) or _steps_differ(y, season)


@dataclass(frozen=True)
class Seasonal:
    """Seasonal indices of a series, position 0 being its first value."""

    indices: np.ndarray
    multiplicative: bool

    def at(self, begin: int, count: int) -> np.ndarray:
        return self.indices[np.arange(begin, begin + count) % len(self.indices)]

    def remove(self, y: np.ndarray) -> np.ndarray:
        s = self.at(0, len(y))
        return y / s if self.multiplicative else y - s

    def restore(self, values: np.ndarray, begin: int) -> np.ndarray:
        """Put the season back on ``values`` that stand at positions ``begin``, ``begin + 1`` ..."""
        s = self.at(begin, len(values))
        return values * s if self.multiplicative else values + s


def _indices(y: np.ndarray, season: int, multiplicative: bool) -> np.ndarray:
    """Classical decomposition: a centred moving average is the trend, the mean ratio (or
    difference) to it per position in the season is its index, normalised to mean 1 (or 0)."""
    weights = np.r_[0.5, np.ones(season - 1), 0.5] / season if season % 2 == 0 else np.ones(season) / season
    trend = np.convolve(y, weights, mode="valid")
    lead = (len(weights) - 1) // 2
    detrended = y[lead : lead + len(trend)] / trend if multiplicative else y[lead : lead + len(trend)] - trend
    positions = np.arange(lead, lead + len(trend)) % season
    means = np.array([detrended[positions == p].mean() for p in range(season)])
    if multiplicative:
        return means / means.mean()
    return means - means.mean()


def decompose(y: np.ndarray, season: int) -> Seasonal | None:
    """The seasonal indices of ``y`` when it is seasonal, else None."""
    if not is_seasonal(y, season):
        return None
    multiplicative = bool(np.min(y) > 0)
    indices = _indices(y, season, multiplicative)
    if multiplicative and np.min(indices) < 0.01:  # a near-zero index would blow the forecast up
        multiplicative = False
        indices = _indices(y, season, multiplicative)
    return Seasonal(indices, multiplicative)
