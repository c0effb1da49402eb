"""Series as the pool holds them: an id, a start on a regular time grid, and the values.

Whatever the source (inline values, SQL rows, a GoodData CSV), data becomes a list of
``SeriesData`` here, and every problem with it is a ``PermanentError`` that names the
series and the timestamp: values that are not numbers, timestamps off the frequency's
grid, missing or repeated timestamps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bus.errors import PermanentError
from contracts import forecast

#: our aliases -> pandas offsets (pandas 2.2 renamed the period-end ones)
_PANDAS = {"M": "ME", "Q": "QE", "Y": "YE"}
_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
#: the seasonal period the models look for, per frequency (1: none)
SEASON = {
    "min": 60,
    "5min": 12,
    "15min": 96,
    "30min": 48,
    "h": 24,
    "D": 7,
    "W": 52,
    "MS": 12,
    "M": 12,
    "QS": 4,
    "Q": 4,
    "YS": 1,
    "Y": 1,
}


def offset(freq: str, start: pd.Timestamp) -> pd.DateOffset:
    """The pandas offset of ``freq``; a week is anchored on the start's weekday."""
    if freq == "W":
        return pd.tseries.frequencies.to_offset(f"W-{_WEEKDAYS[start.weekday()]}")
    return pd.tseries.frequencies.to_offset(_PANDAS.get(freq, freq))


def _show(ts: pd.Timestamp) -> str:
    return ts.isoformat().replace("+00:00", "Z")


@dataclass
class SeriesData:
    series_id: str
    freq: str
    start: pd.Timestamp  # UTC
    values: np.ndarray  # float64; NaN marks a missing observation

    def __len__(self) -> int:
        return len(self.values)

    @property
    def step(self) -> pd.DateOffset:
        return offset(self.freq, self.start)

    def timestamps(self, begin: int = 0, count: int | None = None) -> pd.DatetimeIndex:
        """Timestamps of positions begin, begin + 1, ... (past the end: the future)."""
        count = len(self.values) - begin if count is None else count
        first = self.start + begin * self.step if begin else self.start
        return pd.date_range(first, periods=count, freq=self.step)

    def future(self, horizon: int) -> pd.DatetimeIndex:
        return self.timestamps(len(self.values), horizon)


def _on_grid(freq: str, start: pd.Timestamp, series_id: str) -> None:
    if not offset(freq, start).is_on_offset(start):
        raise PermanentError(
            f"series {series_id!r}: start {_show(start)} is not on the {freq!r} grid"
            f" (e.g. {freq} periods start on {_show(offset(freq, start).rollforward(start))})"
        )


def from_inline(source: forecast.InlineSource) -> list[SeriesData]:
    out = []
    for series in source.series:
        start = pd.Timestamp(series.start_time)
        _on_grid(series.freq, start, series.series_id)
        values = np.array([np.nan if v is None else v for v in series.values], dtype=np.float64)
        out.append(SeriesData(series.series_id, series.freq, start, values))
    return out


def _timestamp(value: Any) -> pd.Timestamp | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if ts is pd.NaT:
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _number(value: Any) -> float | None:
    """A float, NaN for null/empty, None for something that is not a number."""
    if value is None or value == "":
        return np.nan
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def from_rows(rows: Iterable[Sequence[Any]], freq: str, what: str) -> list[SeriesData]:
    """``(series_id, ts, value)`` rows in any order -> regular series, or a clear error.

    ``what`` names the source in messages ("the query", "the export").
    """
    grouped: dict[str, list[tuple[pd.Timestamp, float]]] = {}
    for number, row in enumerate(rows, start=1):
        if len(row) != 3:
            raise PermanentError(f"{what} must return 3 columns (series_id, ts, value); row {number} has {len(row)}")
        sid, raw_ts, raw_value = row
        if sid is None:
            raise PermanentError(f"{what}: row {number} has no series_id")
        ts = _timestamp(raw_ts)
        if ts is None:
            kind = "no timestamp" if raw_ts is None else f"a timestamp that is not a date: {str(raw_ts)[:40]!r}"
            raise PermanentError(f"{what}: series {str(sid)!r}, row {number} has {kind}")
        value = _number(raw_value)
        if value is None:
            raise PermanentError(
                f"{what}: series {str(sid)!r} at {_show(ts)}: value {str(raw_value)[:40]!r} is not a number"
            )
        grouped.setdefault(str(sid), []).append((ts, value))
    if not grouped:
        raise PermanentError(f"{what} returned no rows")
    return [_regular(sid, points, freq, what) for sid, points in grouped.items()]


def _regular(series_id: str, points: list[tuple[pd.Timestamp, float]], freq: str, what: str) -> SeriesData:
    points.sort(key=lambda p: p[0])
    stamps = pd.DatetimeIndex([p[0] for p in points])
    start = stamps[0]
    _on_grid(freq, start, series_id)
    repeated = stamps[stamps.duplicated()]
    if len(repeated):
        raise PermanentError(f"{what}: series {series_id!r} has two values at {_show(repeated[0])}")
    grid = pd.date_range(start, stamps[-1], freq=offset(freq, start))
    off_grid = stamps.difference(grid)
    if len(off_grid):
        raise PermanentError(
            f"{what}: series {series_id!r}: timestamp {_show(off_grid[0])} is not on the {freq!r} grid"
            f" that starts at {_show(start)}"
        )
    missing = grid.difference(stamps)
    if len(missing):
        shown = ", ".join(_show(ts) for ts in missing[:3])
        raise PermanentError(
            f"{what}: series {series_id!r} has missing timestamps for frequency {freq!r}: {shown}"
            + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            + " (return a row with a null value for a missing observation)"
        )
    return SeriesData(series_id, freq, start, np.array([p[1] for p in points], dtype=np.float64))


def require_complete(series: list[SeriesData]) -> None:
    """The local backend's models need every observation."""
    for s in series:
        gaps = np.flatnonzero(np.isnan(s.values))
        if len(gaps):
            at = _show(s.timestamps(int(gaps[0]), 1)[0])
            raise PermanentError(
                f"series {s.series_id!r} has {len(gaps)} missing value(s), the first at {at}: the local backend"
                " needs complete series (fill the gaps, or use backend 'sagemaker', whose DeepAR accepts them)"
            )


def require_length(series: list[SeriesData], needed: int, why: str) -> None:
    for s in series:
        if len(s) < needed:
            raise PermanentError(f"series {s.series_id!r} has {len(s)} values; {why} needs at least {needed}")
