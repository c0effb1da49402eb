"""The models the local backend combines: statsforecast's automatic models, and drift.

``search`` runs a model's automatic choice (ETS components, ARIMA orders, Theta variant, CES
season type) and returns its forecast with the form it chose; ``refit`` fits that form again
on other data (a fraction of the cost of a new search: that is how the rolling origins stay
cheap). ``season`` is the season length the model is given: the frequency's, or 1 for none
(selection.member_season decides; a seasonal series then comes seasonally adjusted). Drift is a
closed form.

A model that cannot fit a series (too short for it, a numerical failure) returns None; the
combinations go on without it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

#: statsforecast's automatic models the local backend fits (and the bench compares it with)
AUTOMATIC = ("AutoETS", "AutoTheta", "AutoARIMA", "AutoCES")
DRIFT = "Drift"

Form = tuple[Any, ...]


@dataclass
class Fit:
    mean: np.ndarray
    form: Form = ()


def drift(z: np.ndarray, h: int) -> np.ndarray:
    """The last value plus the mean step so far (random walk with drift)."""
    slope = float((z[-1] - z[0]) / (len(z) - 1)) if len(z) > 1 else 0.0
    return z[-1] + slope * np.arange(1, h + 1)


def _model(name: str, season: int, form: Form) -> Any:
    from statsforecast import models

    if name == "AutoETS":
        if form:
            return models.AutoETS(season_length=season, model=form[0], damped=form[1])
        return models.AutoETS(season_length=season)
    if name == "AutoTheta":
        return models.AutoTheta(season_length=season, model=form[0] if form else None)
    if name == "AutoCES":
        return models.AutoCES(season_length=season, model=form[0] if form else "Z")
    if form:
        order, seasonal_order, mean, with_drift = form
        return models.ARIMA(
            order=order,
            season_length=season,
            seasonal_order=seasonal_order,
            include_mean=mean,
            include_drift=with_drift,
        )
    return models.AutoARIMA(season_length=season)


def _form(name: str, fitted: Any) -> Form:
    """The form an automatic model chose, to refit without searching again."""
    model = fitted.model_
    if name == "AutoETS":
        error, trend, season = model["method"][4:-1].split(",")
        return (error + trend[0] + season, trend.endswith("d"))
    if name == "AutoTheta":
        return (str(model["modeltype"]),)
    if name == "AutoCES":
        return (str(model["seasontype"]),)
    p, q, sp, sq, _, d, sd = (int(v) for v in model["arma"])
    coefficients = model["coef"]
    return ((p, d, q), (sp, sd, sq), "intercept" in coefficients, "drift" in coefficients)


def _fit(name: str, z: np.ndarray, h: int, season: int, form: Form) -> Fit | None:
    if name == DRIFT:
        return Fit(drift(z, h))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = _model(name, season, form).fit(z)
            mean = np.asarray(model.predict(h=h)["mean"], dtype=np.float64)
            chosen = form or _form(name, model)
        except Exception:  # noqa: BLE001 - too short or numerically hopeless for this model: the others go on
            return None
    return Fit(mean, chosen) if np.all(np.isfinite(mean)) else None


def search(name: str, z: np.ndarray, h: int, season: int = 1) -> Fit | None:
    """Forecast of ``name`` after its automatic choice of form (``Fit.form``)."""
    return _fit(name, z, h, season, ())


def refit(name: str, form: Form, z: np.ndarray, h: int, season: int = 1) -> Fit | None:
    """Forecast of ``name`` in a form chosen before; None if the form does not fit ``z``."""
    return _fit(name, z, h, season, form)
