"""Writing a job's results: ``forecast_series``, ``forecasts`` and ``anomalies`` rows.

Rows are keyed by (job id, series, ts) and upserted, so a redelivered job rewrites the
same rows instead of adding to them. Rows are streamed with COPY into a temporary
table and merged in one statement: thousands of series stay fast, and a job's results
appear all at once (one transaction).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import psycopg

from bus import db
from bus.queries import load

SQL = load("forecasts")


@dataclass
class SeriesRow:
    series_id: str
    kind: str  # forecast | anomalies
    backend: str  # local | sagemaker
    model: str
    points: int
    mase: float | None = None
    smape: float | None = None
    threshold: float | None = None
    anomalies: int | None = None
    #: forecast: how the model was chosen, on how many points its accuracy was measured, its members' weights
    selection: str | None = None
    validated_points: int | None = None
    weights: dict[str, float] | None = None


def finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _copy(conn: psycopg.Connection[Any], table: str, rows: Iterable[Sequence[Any]]) -> None:
    conn.execute(SQL[f"stage_{table}"])
    with conn.cursor().copy(SQL[f"copy_{table}"]) as copy:
        for row in rows:
            copy.write_row(row)
    conn.execute(SQL[f"upsert_{table}"])


def save(
    job_id: str,
    series: list[SeriesRow],
    forecasts: Iterable[tuple[str, Any, float, dict[str, float]]] = (),
    anomalies: Iterable[tuple[str, Any, float | None, float, bool]] = (),
) -> None:
    """``forecasts``: (series_id, ts, mean, {quantile: value}); ``anomalies``: (series_id, ts,
    value, score, is_anomaly)."""
    encode = msgspec.json.encode
    with db.pool().connection() as conn, conn.transaction():
        _copy(
            conn,
            "series",
            (
                (
                    job_id,
                    s.series_id,
                    s.kind,
                    s.backend,
                    s.model,
                    s.points,
                    finite(s.mase),
                    finite(s.smape),
                    finite(s.threshold),
                    s.anomalies,
                    s.selection,
                    s.validated_points,
                    None if s.weights is None else encode(s.weights).decode(),
                )
                for s in series
            ),
        )
        _copy(conn, "forecasts", ((job_id, sid, ts, mean, encode(q).decode()) for sid, ts, mean, q in forecasts))
        _copy(
            conn,
            "anomalies",
            ((job_id, sid, ts, finite(value), score, flag) for sid, ts, value, score, flag in anomalies),
        )
