"""The metrics themselves. Accuracy is a polars expression (a window can hold millions
of predictions); the others are scikit-learn's, so values match it exactly.

scikit-learn is imported on first use: it weighs about 150 MB, and a worker that only
computes accuracy (the common schedule) never needs it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import polars as pl

from bus.errors import PermanentError
from workers.metrics.data import Predictions


@functools.cache
def sk() -> ModuleType:
    from sklearn import metrics

    return metrics


NUMERIC_ONLY = frozenset({"mae", "rmse", "mape", "r2"})
NEEDS_SCORES = frozenset({"roc_auc", "log_loss"})


def _accuracy(p: Predictions) -> float:
    return float(p.frame.select((pl.col("y_true") == pl.col("y_pred")).mean()).item())


def _labels(p: Predictions) -> list[Any]:
    return sorted(set(p.frame["y_true"].to_list()) | set(p.frame["y_pred"].to_list()), key=lambda v: (str(type(v)), v))


def _per_class(fn: Callable[..., Any], p: Predictions) -> dict[str, Any]:
    t, y = p.frame["y_true"].to_numpy(), p.frame["y_pred"].to_numpy()
    labels = _labels(p)
    per = fn(t, y, labels=labels, average=None, zero_division=0)
    return {
        "macro": float(fn(t, y, labels=labels, average="macro", zero_division=0)),
        "weighted": float(fn(t, y, labels=labels, average="weighted", zero_division=0)),
        "per_class": {str(label): float(v) for label, v in zip(labels, per, strict=True)},
    }


def _scores(p: Predictions) -> np.ndarray:
    if "y_score" not in p.frame.columns:
        raise PermanentError("roc_auc and log_loss need y_score in every results row of the window")
    column = p.frame["y_score"]
    return np.asarray(column.to_list(), dtype=float) if column.dtype == pl.List else column.to_numpy()


def _roc_auc(p: Predictions) -> float:
    scores = _scores(p)
    t = p.frame["y_true"].to_numpy()
    if len(set(t.tolist())) < 2:
        raise PermanentError("roc_auc needs both classes in y_true")
    if scores.ndim == 2:
        return float(sk().roc_auc_score(t, scores, multi_class="ovr"))
    return float(sk().roc_auc_score(t, scores))


def _log_loss(p: Predictions) -> float:
    scores = _scores(p)
    labels = sorted(set(p.frame["y_true"].to_list()))
    return float(sk().log_loss(p.frame["y_true"].to_numpy(), scores, labels=labels if scores.ndim == 2 else None))


def _confusion(p: Predictions) -> dict[str, Any]:
    labels = _labels(p)
    matrix = sk().confusion_matrix(p.frame["y_true"].to_numpy(), p.frame["y_pred"].to_numpy(), labels=labels)
    return {"labels": [str(v) for v in labels], "matrix": matrix.tolist()}


def _numeric(name: str) -> Callable[[Predictions], float]:
    def metric(p: Predictions) -> float:
        return float(getattr(sk(), name)(p.frame["y_true"].to_numpy(), p.frame["y_pred"].to_numpy()))

    return metric


METRICS: dict[str, Callable[[Predictions], Any]] = {
    "accuracy": _accuracy,
    "balanced_accuracy": lambda p: float(
        sk().balanced_accuracy_score(p.frame["y_true"].to_numpy(), p.frame["y_pred"].to_numpy())
    ),
    "precision": lambda p: _per_class(sk().precision_score, p),
    "recall": lambda p: _per_class(sk().recall_score, p),
    "f1": lambda p: _per_class(sk().f1_score, p),
    "confusion_matrix": _confusion,
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
    "mae": _numeric("mean_absolute_error"),
    "rmse": _numeric("root_mean_squared_error"),
    "mape": _numeric("mean_absolute_percentage_error"),
    "r2": _numeric("r2_score"),
}


def compute(p: Predictions, names: list[str]) -> dict[str, Any]:
    numeric = p.frame["y_true"].dtype.is_numeric()
    wrong = sorted(set(names) & NUMERIC_ONLY) if not numeric else []
    if wrong:
        raise PermanentError(f"{', '.join(wrong)} need numeric y_true and y_pred, these are labels")
    return {name: METRICS[name](p) for name in dict.fromkeys(names)}


def headline(metrics: dict[str, Any], name: str) -> float | None:
    """The single number of a metric an alert compares (macro average for per-class metrics)."""
    value = metrics.get(name)
    if isinstance(value, dict):
        value = value.get("macro")
    return float(value) if isinstance(value, int | float) else None
