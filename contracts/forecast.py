"""Commands of the ``forecast`` pool: forecasts and anomaly detection.

Everything that can be checked without the data is checked here, so a bad command
is refused at the ingress (422 naming the field) and never reaches a queue: the
horizon, the frequency, the quantile levels, and for inline series their length,
their start and unique ids. What needs the data (a SQL query's rows, a GoodData
export) is checked by the worker, which fails the job with a clear message.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from contracts.base import CommandBase, Identifier, Model

#: pandas-style frequency aliases the pool understands (M, Q, Y: period end; MS, QS, YS: period start)
Frequency = Literal["min", "5min", "15min", "30min", "h", "D", "W", "MS", "M", "QS", "Q", "YS", "Y"]
SeriesId = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
#: ISO 8601 date ("2024-01-01", read as midnight UTC) or date-time (without an offset: UTC)
Start = Annotated[
    str,
    msgspec.Meta(
        min_length=10,
        max_length=40,
        pattern=r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$",
        description="ISO 8601 date or date-time; a date is midnight UTC, a date-time without an offset is UTC",
    ),
]
Horizon = Annotated[int, msgspec.Meta(ge=1, le=10_000, description="points to forecast (prediction_length)")]
Quantile = Annotated[float, msgspec.Meta(gt=0, lt=1)]

#: the local backend forecasts any series of at least this many values (shorter ones get its
#: default for short series, chosen in advance, rather than a model chosen by validation)
MIN_LOCAL_POINTS = 3
#: DeepAR (sagemaker backend) holds out the last horizon and trains on the rest: at least this many
MIN_FIT_POINTS = 8
#: anomaly scores need a model of the series: at least this many points
MIN_ANOMALY_POINTS = 8


def min_length(horizon: int, backend: str = "local") -> int:
    """Shortest series a forecast of ``horizon`` points accepts. The local backend forecasts from 3
    values on; the sagemaker backend holds out the last ``horizon`` points for its backtest and
    trains DeepAR on the rest, which must be at least a horizon (and 8 points)."""
    if backend == "local":
        return MIN_LOCAL_POINTS
    return horizon + max(horizon, MIN_FIT_POINTS)


#: the forecast pool's timestamps are pandas' (nanoseconds since 1970, 1677-09-21 to 2262-04-11):
#: a series, its forecast included, lies within these
FIRST_TIME = dt.datetime(1678, 1, 1, tzinfo=dt.UTC)
LAST_TIME = dt.datetime(2261, 12, 31, tzinfo=dt.UTC)
#: the longest step of each frequency, to bound where a series ends without pandas
_LONGEST_STEP_DAYS = {"min": 1 / 1440, "5min": 5 / 1440, "15min": 15 / 1440, "30min": 30 / 1440, "h": 1 / 24}
_LONGEST_STEP_DAYS |= {"D": 1, "W": 7, "MS": 31, "M": 31, "QS": 92, "Q": 92, "YS": 366, "Y": 366}


def parse_start(text: str) -> dt.datetime:
    """``Series.start`` as an aware UTC date-time."""
    value = dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def check_span(start: dt.datetime, freq: str, points: int) -> None:
    """ValueError unless ``points`` steps of ``freq`` from ``start`` stay within FIRST_TIME..LAST_TIME."""
    span = dt.timedelta(days=_LONGEST_STEP_DAYS[freq] * points)
    if start < FIRST_TIME or LAST_TIME - start < span:  # compared as spans: no date overflows
        raise ValueError(
            f"{points} points of {freq!r} from {start:%Y-%m-%d} do not fit between"
            f" {FIRST_TIME:%Y-%m-%d} and {LAST_TIME:%Y-%m-%d}, the range of the forecast pool's timestamps"
        )


class Series(Model):
    start: Start
    freq: Frequency
    #: null marks a missing observation (accepted by the sagemaker backend; the local one refuses it)
    values: Annotated[list[float | None], msgspec.Meta(min_length=1, max_length=1_000_000)]
    series_id: SeriesId = "series"

    def __post_init__(self) -> None:
        try:
            start = parse_start(self.start)
        except ValueError:
            raise ValueError(f"start: {self.start!r} is not an ISO 8601 date or date-time") from None
        except OverflowError:  # its offset moves it out of Python's years: 0001-01-01T00:00+01:00
            raise ValueError(f"start: {self.start!r} is out of range") from None
        try:
            check_span(start, self.freq, len(self.values))
        except ValueError as err:
            raise ValueError(f"start: {err}") from None

    @property
    def start_time(self) -> dt.datetime:
        return parse_start(self.start)


class InlineSource(Model, tag="inline", tag_field="kind"):
    series: Annotated[list[Series], msgspec.Meta(min_length=1, max_length=100_000)]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for index, series in enumerate(self.series):
            if series.series_id in seen:
                raise ValueError(f"series: series_id {series.series_id!r} is used twice (series[{index}])")
            seen.add(series.series_id)
        if len({s.freq for s in self.series}) > 1:
            raise ValueError("series: every series of one command has the same freq")


class SqlSource(Model, tag="sql", tag_field="kind"):
    """A read-only query on the store returning ``(series_id, ts, value)`` rows, in that column order."""

    query: Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]
    freq: Frequency


class GoodDataSource(Model, tag="gooddata", tag_field="kind"):
    """A visualization exported as CSV through the GoodData pool's client: the first column is the
    date, every other column a series (its header is the series id)."""

    workspace_id: Identifier
    visualization_id: Identifier
    freq: Frequency


Source = InlineSource | SqlSource | GoodDataSource


class DeepAR(Model):
    """DeepAR training and inference settings (sagemaker backend); time_freq, prediction_length and
    context_length come from the command."""

    epochs: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    early_stopping_patience: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = 10
    mini_batch_size: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 64
    learning_rate: Annotated[float, msgspec.Meta(gt=0, le=1)] = 1e-3
    #: sample paths drawn per prediction (quantiles are estimated from them)
    num_samples: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100


class RandomCutForest(Model):
    """Random Cut Forest settings (sagemaker backend). Each point is one record of ``feature_dim``
    features: the value and the ``feature_dim - 1`` values before it (a shingle)."""

    feature_dim: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    num_trees: Annotated[int, msgspec.Meta(ge=50, le=1000)] = 100
    num_samples_per_tree: Annotated[int, msgspec.Meta(ge=1, le=2048)] = 256


class Forecast(CommandBase, tag="forecast.forecast"):
    source: Source
    prediction_length: Horizon
    #: points of history the model looks at (local: the most recent points it fits on; DeepAR: its
    #: context_length hyperparameter, default the horizon)
    context_length: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None
    quantiles: Annotated[list[Quantile], msgspec.Meta(min_length=1, max_length=99)] = msgspec.field(
        default_factory=lambda: [0.025, 0.5, 0.975]
    )
    backend: Literal["local", "sagemaker"] = "local"
    deepar: DeepAR = msgspec.field(default_factory=DeepAR)

    def __post_init__(self) -> None:
        if len(set(self.quantiles)) != len(self.quantiles):
            raise ValueError("quantiles: each level may appear once")
        if self.context_length is not None and self.context_length < MIN_LOCAL_POINTS and self.backend == "local":
            raise ValueError(f"context_length: the local backend needs at least {MIN_LOCAL_POINTS} points to fit on")
        if isinstance(self.source, InlineSource):
            need = min_length(self.prediction_length, self.backend)
            h = self.prediction_length
            why = "a forecast needs" if self.backend == "local" else f"a horizon of {h} on the sagemaker backend needs"
            held = "" if self.backend == "local" else f" (the last {h} are held out to measure accuracy)"
            for index, series in enumerate(self.source.series):
                if len(series.values) < need:
                    raise ValueError(
                        f"source: series {series.series_id!r} (series[{index}]) has {len(series.values)} values;"
                        f" {why} at least {need}{held}"
                    )
                try:
                    check_span(series.start_time, series.freq, len(series.values) + self.prediction_length)
                except ValueError as err:
                    raise ValueError(f"source: series[{index}] and its forecast: {err}") from None


class Anomalies(CommandBase, tag="forecast.anomalies"):
    source: Source
    backend: Literal["local", "sagemaker"] = "local"
    #: flag a point whose score is above mean + threshold_sigma * std of its series' scores
    threshold_sigma: Annotated[float, msgspec.Meta(gt=0, le=100)] = 3.0
    rcf: RandomCutForest = msgspec.field(default_factory=RandomCutForest)

    def __post_init__(self) -> None:
        if isinstance(self.source, InlineSource):
            for index, series in enumerate(self.source.series):
                if len(series.values) < MIN_ANOMALY_POINTS:
                    raise ValueError(
                        f"source: series {series.series_id!r} (series[{index}]) has {len(series.values)} values;"
                        f" anomaly scores need at least {MIN_ANOMALY_POINTS}"
                    )


COMMANDS = (Forecast, Anomalies)
