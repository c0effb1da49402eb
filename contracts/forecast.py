"""Commands of the ``forecast`` pool: forecasts and anomaly detection."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from contracts.base import CommandBase, Identifier, Model

#: pandas-style frequency aliases the pool understands
Frequency = Literal["min", "5min", "15min", "30min", "h", "D", "W", "MS", "M", "QS", "Q", "YS", "Y"]
SeriesId = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class Series(Model):
    start: dt.datetime  # a date is read as midnight UTC
    freq: Frequency
    values: Annotated[list[float | None], msgspec.Meta(min_length=1, max_length=1_000_000)]
    series_id: SeriesId = "series"


class InlineSource(Model, tag="inline", tag_field="kind"):
    series: Annotated[list[Series], msgspec.Meta(min_length=1, max_length=100_000)]


class SqlSource(Model, tag="sql", tag_field="kind"):
    """A read-only query on the store returning ``(series_id, ts, value)``."""

    query: Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]
    freq: Frequency


class GoodDataSource(Model, tag="gooddata", tag_field="kind"):
    """A visualization exported as CSV through the GoodData pool's client."""

    workspace_id: Identifier
    visualization_id: Identifier
    freq: Frequency


Source = InlineSource | SqlSource | GoodDataSource
Quantile = Annotated[float, msgspec.Meta(gt=0, lt=1)]


class Forecast(CommandBase, tag="forecast.forecast"):
    source: Source
    prediction_length: Annotated[int, msgspec.Meta(ge=1, le=10_000)]
    context_length: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None
    quantiles: Annotated[list[Quantile], msgspec.Meta(min_length=1, max_length=99)] = msgspec.field(
        default_factory=lambda: [0.025, 0.5, 0.975]
    )
    backend: Literal["local", "sagemaker"] = "local"


class Anomalies(CommandBase, tag="forecast.anomalies"):
    source: Source
    backend: Literal["local", "sagemaker"] = "local"
    #: flag a point whose score is above mean + threshold_sigma * std of the scores
    threshold_sigma: Annotated[float, msgspec.Meta(gt=0, le=100)] = 3.0


COMMANDS = (Forecast, Anomalies)
