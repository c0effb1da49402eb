"""How a series' forecast is chosen: rolling-origin cross-validation, or the short-series default.

Per series:

1. **Season**: the frequency's season length. A series that passes the seasonality test
   (seasonality.py) is seasonally adjusted for the members that do not model the season
   themselves (``member_season``), and the season is put back on their forecasts.
2. **Members**: AutoETS, AutoTheta, AutoARIMA, AutoCES (statsforecast) and drift, each searching
   its form (components, orders, variant) once, on the whole series.
3. **Origins**: up to ``ORIGINS`` cut points, a horizon apart, the last one a horizon before the
   end, each leaving at least ``MIN_TRAIN`` points (two seasons for a seasonal series) before it.
   At every origin each member is refit in its form on the history before the origin only
   (season test and adjustment included) and forecasts the next horizon. The form itself was
   chosen on the whole series (a search per origin would cost a search each): the validation
   points are unseen by the fitted parameters, not by the choice of form; on the benchmark the
   validation MASE comes out higher than the MASE the forecasts then score, not lower.
4. **Candidates**: the ensemble (equal weights; a seasonal series' leaves drift out), the
   ensemble weighted by each member's validation error, and each member alone; their MASE over
   the origins decides. A candidate other than the ensemble must beat it by ``MARGIN`` to be
   chosen: with a few origins the errors are noisy, and on the benchmark a combination beat a
   per-series choice of one model unless the validation said so clearly.
5. **Short series** (fewer than two origins): the default chosen in advance on the benchmark's
   short series (bench/RESULTS-forecast.md), the equal-weight combination of drift, AutoCES and
   AutoARIMA without a season (yearly data), of AutoCES, AutoARIMA and AutoETS with one; no
   accuracy is measured.

The chosen candidate's errors at the latest origin also size its prediction intervals (intervals.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from workers.forecast import members, seasonality
from workers.forecast.accuracy import mase, smape
from workers.forecast.members import Form

#: cut points of the rolling-origin validation, at most
ORIGINS = 3
#: history an origin leaves before it, at least (a seasonal series: two seasons too)
MIN_TRAIN = 8
#: with this many seasons of history the models fit the season themselves
NATIVE_SEASONS = 3
#: a candidate other than the ensemble is chosen only with a validation MASE below this
#: fraction of the ensemble's (the weighted ensemble), or of that (a member alone)
MARGIN = {"WeightedEnsemble": 0.9, "member": 0.75}
MEMBERS = (*members.AUTOMATIC, members.DRIFT)
#: the short-series defaults, chosen in advance on the benchmark's short series: without a
#: season (yearly data) drift, CES and ARIMA; with one, CES, ARIMA and ETS
SHORT_DEFAULT = ("Drift", "AutoCES", "AutoARIMA")
SHORT_DEFAULT_SEASONAL = ("AutoCES", "AutoARIMA", "AutoETS")
ENSEMBLE = "Ensemble"
WEIGHTED = "WeightedEnsemble"


def member_season(name: str, n: int, season: int, seasonal: bool) -> int:
    """The season length member ``name`` is given for a series of ``n`` values (1: none, or the
    series comes seasonally adjusted when ``seasonal``).

    From two seasons of history on, CES always gets the season (it chooses among its season
    types itself), ARIMA gets it when the seasonality test found none (its own seasonal
    differencing test may still find one), ETS when the test found one and three seasons are
    there (it keeps a state per position in the season). Otherwise a seasonal series is
    seasonally adjusted for the member: Theta and drift always, ARIMA and ETS on short history,
    where fitting a season of their own fails (ARIMA on two years of months finds none)."""
    if season < 2 or n < 2 * season:
        return 1
    if name == "AutoCES":
        return season
    if name == "AutoARIMA":
        return 1 if seasonal else season
    if name == "AutoETS":
        return season if seasonal and n >= NATIVE_SEASONS * season else 1
    return 1


@dataclass
class MemberForecasts:
    """Each member's forecast of the points after the history, and the forms found."""

    means: dict[str, np.ndarray]
    forms: dict[str, tuple[int, Form]]  # member -> (season it was given, form found)
    seasonal: bool  # the history passed the seasonality test


def forecast_members(
    y: np.ndarray, h: int, season: int, names: Sequence[str], found_before: MemberForecasts | None = None
) -> MemberForecasts:
    """Every member's forecast of ``y``'s next ``h`` points; ``found_before``: refit the forms found
    there (when the member gets the same season here) instead of searching again."""
    adjustment = seasonality.decompose(y, season)
    adjusted = adjustment.remove(y) if adjustment else y
    before = found_before.forms if found_before is not None else {}
    means: dict[str, np.ndarray] = {}
    found: dict[str, tuple[int, Form]] = {}
    for name in names:
        m = member_season(name, len(y), season, adjustment is not None)
        z = y if m > 1 else adjusted
        if name == members.DRIFT:
            mean = members.drift(z, h)
        else:
            fit = None
            if name in before and before[name][0] == m:
                fit = members.refit(name, before[name][1], z, h, m)
            fit = fit or members.search(name, z, h, m)
            if fit is None:
                continue
            mean, found[name] = fit.mean, (m, fit.form)
        means[name] = adjustment.restore(mean, len(y)) if adjustment and m == 1 else mean
    return MemberForecasts(means, found, adjustment is not None)


def origins(n: int, h: int, season: int, seasonal: bool) -> list[int]:
    """Cut points, latest first: a horizon apart, the last a horizon before the end."""
    least = max(MIN_TRAIN, 2 * season if seasonal else 0)
    return [t for t in (n - h * k for k in range(1, ORIGINS + 1)) if t >= least]


def combine(means: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray | None:
    used = {k: w for k, w in weights.items() if k in means and w > 0}
    if not used:
        return None
    total = sum(used.values())
    return sum(w * means[k] for k, w in used.items()) / total  # type: ignore[return-value]


@dataclass
class Window:
    history: np.ndarray
    actual: np.ndarray
    means: dict[str, np.ndarray]


@dataclass
class Choice:
    model: str  # Ensemble, WeightedEnsemble, a member's name
    weights: dict[str, float]
    selection: str  # how it was chosen, in words
    validated_points: int
    mase: float | None
    smape: float | None
    errors: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (history, actual - predicted)


def _score(windows: list[Window], weights: dict[str, float], season: int) -> tuple[float, float]:
    scores, syms = [], []
    for w in windows:
        predicted = combine(w.means, weights)
        if predicted is None:
            return math.inf, math.inf
        scores.append(mase(w.history, w.actual, predicted, season))
        syms.append(smape(w.actual, predicted))
    finite = [s for s in scores if math.isfinite(s)]
    # a constant history has no MASE scale: rank by sMAPE then
    return (float(np.mean(finite)) if finite else float(np.mean(syms)) + 1e6), float(np.mean(syms))


def choose(y: np.ndarray, h: int, season: int, full: MemberForecasts) -> Choice:
    """Validate every candidate over the rolling origins and pick one, or take the short-series default."""
    cuts = origins(len(y), h, season, full.seasonal)
    if len(cuts) < 2:
        default = SHORT_DEFAULT_SEASONAL if season > 1 else SHORT_DEFAULT
        weights = {k: 1.0 for k in default if k in full.means} or {k: 1.0 for k in full.means}
        return Choice(ENSEMBLE, weights, "default for short series", 0, None, None)
    windows = []
    for t in cuts:
        past = forecast_members(y[:t], h, season, list(full.means), full)
        windows.append(Window(y[:t], y[t : t + h], past.means))
    names = [k for k in full.means if all(k in w.means for w in windows)]
    single = {k: _score(windows, {k: 1.0}, season) for k in names}
    # a seasonal series' ensemble leaves drift out: a trend line is what the others beat there
    ensemble = [k for k in names if not (full.seasonal and k == members.DRIFT)] or names
    candidates: dict[str, dict[str, float]] = {ENSEMBLE: {k: 1.0 for k in ensemble}}
    candidates[WEIGHTED] = {k: 1.0 / max(single[k][0], 1e-9) for k in names if math.isfinite(single[k][0])}
    candidates |= {k: {k: 1.0} for k in names}
    scored = {name: _score(windows, weights, season) for name, weights in candidates.items()}
    best = ENSEMBLE
    for name, (score, _) in scored.items():
        margin = MARGIN.get(name, MARGIN["member"])
        if name != ENSEMBLE and score < margin * scored[ENSEMBLE][0] and score < scored[best][0]:
            best = name
    weights = candidates[best]
    # the latest origin's errors size the intervals (intervals.py says why)
    latest = windows[0]
    predicted = combine(latest.means, weights)
    errors = [] if predicted is None else [(latest.history, latest.actual - predicted)]
    score, sym = scored[best]
    return Choice(
        best,
        weights,
        f"cross-validation over {len(windows)} origins",
        sum(len(w.actual) for w in windows),
        score if score < 1e6 else None,
        sym,
        errors,
    )
