"""Commands of the ``metrics`` pool: model-accuracy metrics."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec

from contracts.base import CommandBase, Model

MetricName = Literal[
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "confusion_matrix",
    "roc_auc",
    "log_loss",
    "mae",
    "rmse",
    "mape",
    "r2",
]


class Window(Model):
    """Which rows of ``results`` to use. Default: the newest row only (the original behaviour)."""

    last_n: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] | None = None
    since: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.last_n is not None and self.since is not None:
            raise ValueError("last_n: give last_n or since, not both")


class Compute(CommandBase, tag="metrics.compute"):
    model_id: uuid.UUID
    metrics: Annotated[list[MetricName], msgspec.Meta(min_length=1, max_length=12)] = msgspec.field(
        default_factory=lambda: ["accuracy"]
    )
    window: Window | None = None


class DeliverAlert(CommandBase, tag="metrics.alert.deliver"):
    """Post the alert webhook of ``alert_deliveries`` row ``delivery_id`` (emitted by metrics.compute)."""

    delivery_id: Annotated[int, msgspec.Meta(ge=1)]


COMMANDS = (Compute, DeliverAlert)
