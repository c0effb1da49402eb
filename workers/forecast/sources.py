"""Where a job's series come from: inline values, a read-only SQL query, a GoodData export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

import psycopg
import sqlglot
from sqlglot import exp

from bus import settings
from bus.errors import PermanentError
from contracts import forecast
from workers.forecast.frames import SeriesData, from_inline, from_rows, offset

#: anything that writes, locks or leaves the SELECT (SELECT INTO creates a table; a CTE may delete)
_WRITES = tuple(
    getattr(exp, name)
    for name in ("Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "Command", "Into", "Lock", "Copy")
    if hasattr(exp, name)
)


def load(source: forecast.Source) -> list[SeriesData]:
    if isinstance(source, forecast.InlineSource):
        return from_inline(source)
    if isinstance(source, forecast.SqlSource):
        return from_rows(run_query(source.query), source.freq, "the query")
    return from_rows(gooddata_rows(source), source.freq, "the GoodData export")


# --- SQL -------------------------------------------------------------------------------------


def check_query(text: str) -> None:
    """One SELECT (or UNION, VALUES ...) that writes and locks nothing, or a PermanentError.

    The text is run as it is, never combined with other SQL; this check and the READ ONLY
    transaction are two independent fences.
    """
    try:
        statements = [s for s in sqlglot.parse(text, read="postgres") if s is not None]
    except sqlglot.errors.SqlglotError as err:
        first = str(err).splitlines()[0][:300]
        raise PermanentError(f"source.query is not SQL that can be parsed: {first}") from None
    if len(statements) != 1:
        raise PermanentError(f"source.query must be exactly one statement; it has {len(statements)}")
    (statement,) = statements
    if not isinstance(statement, exp.Query):
        raise PermanentError(f"source.query must be a SELECT; it is a {statement.key.upper()} statement")
    for node in statement.walk():
        if isinstance(node, _WRITES):
            raise PermanentError(f"source.query must only read: it contains {node.key.upper()}")


def run_query(text: str) -> list[tuple[Any, ...]]:
    """The query's rows, read in a READ ONLY transaction with a statement timeout."""
    check_query(text)
    s = settings.get()
    try:
        with psycopg.connect(s.forecast_sql_url or s.database, connect_timeout=10) as conn:
            conn.read_only = True
            with conn.transaction():
                timeout_ms = str(int(s.forecast_sql_timeout_s * 1000))
                conn.execute("SELECT set_config('statement_timeout', %s, true)", (timeout_ms,))
                # a server-side cursor: DECLARE accepts nothing but a query, a third fence
                with conn.cursor(name="forecast_source") as cur:
                    cur.execute(text)
                    columns = len(cur.description or ())
                    if columns != 3:
                        raise PermanentError(
                            f"source.query must return 3 columns (series_id, ts, value); it returns {columns}"
                        )
                    rows: list[tuple[Any, ...]] = []
                    while batch := cur.fetchmany(10_000):
                        rows.extend(batch)
                        if len(rows) > s.forecast_sql_max_rows:
                            raise PermanentError(
                                f"source.query returned more than FORECAST_SQL_MAX_ROWS={s.forecast_sql_max_rows} rows"
                            )
                    return rows
    except psycopg.errors.QueryCanceled:
        raise PermanentError(
            f"source.query ran longer than FORECAST_SQL_TIMEOUT_S={s.forecast_sql_timeout_s:g} s"
        ) from None
    except (
        psycopg.errors.ProgrammingError,
        psycopg.errors.DataError,
        psycopg.errors.ReadOnlySqlTransaction,
    ) as err:
        # the query's own fault (syntax, unknown table, no privilege, a write): retrying cannot help
        raise PermanentError(f"source.query failed: {str(err).strip().splitlines()[0][:500]}") from None


# --- GoodData --------------------------------------------------------------------------------


def export_csv(workspace_id: str, visualization_id: str) -> bytes:
    """The visualization's data through the gooddata pool's client (imported only when used)."""
    try:
        from workers.gooddata.exports import visualization_csv
    except ImportError as err:
        if err.name is not None and not err.name.startswith("workers.gooddata"):
            raise  # the module is there but broken: a bug, not a missing feature
        raise PermanentError(
            "the gooddata source needs the gooddata pool's export client (workers/gooddata/exports.py),"
            " which this installation does not have"
        ) from None
    return visualization_csv(workspace_id, visualization_id)


_QUARTER = re.compile(r"^(\d{4})[-/ ]?Q([1-4])$", re.IGNORECASE)


def _period_label(text: str) -> str:
    """GoodData date labels: ISO dates, 2024-01 (month), 2024 (year), 2024-Q1 (quarter)."""
    text = text.strip()
    quarter = _QUARTER.match(text)
    if quarter:
        return f"{quarter[1]}-{3 * int(quarter[2]) - 2:02d}-01"
    if re.fullmatch(r"\d{4}", text):
        return f"{text}-01-01"
    return text


def _is_date(label: str) -> bool:
    text = _period_label(label)
    if not re.match(r"^\d{4}-\d{2}", text):
        return False
    try:
        dt.datetime.fromisoformat(text if len(text) > 7 else f"{text}-01")
    except ValueError:
        return False
    return True


def parse_export(data: bytes, freq: str) -> list[tuple[str, Any, Any]]:
    """A visualization's CSV as ``(series_id, ts, value)`` rows.

    GoodData's layout: dates across the header row, one row per metric (its label first).
    Wide: the first column is the date, every other column a series named by its header.
    Long: three columns (date, series label, value) where the second is not numeric.
    Period labels are read as the period's first day (period-end frequencies roll forward).
    """
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    table = [row for row in table if any(cell.strip() for cell in row)]
    if len(table) < 2 or len(table[0]) < 2:
        raise PermanentError("the GoodData export has no data: it needs a date column and at least one metric")
    header, body = table[0], table[1:]

    def when(label: str) -> Any:
        text = _period_label(label)
        if freq in ("M", "Q", "Y"):
            import pandas as pd

            try:
                ts = pd.Timestamp(text)
            except ValueError:
                return text
            return offset(freq, ts).rollforward(ts)
        return text

    def numeric(cell: str) -> bool:
        try:
            float(cell)
        except ValueError:
            return cell.strip() == ""
        return True

    if all(_is_date(cell) for cell in header[1:]):
        # GoodData's own layout: dates across the header, one row per metric
        return [
            (row[0], when(header[column]), row[column] if column < len(row) else "")
            for row in body
            for column in range(1, len(header))
        ]
    if len(header) == 3 and not all(numeric(row[1]) for row in body if len(row) > 1):
        return [(row[1], when(row[0]), row[2]) for row in body]
    rows = []
    for row in body:
        for column in range(1, len(header)):
            rows.append((header[column], when(row[0]), row[column] if column < len(row) else ""))
    return rows


def gooddata_rows(source: forecast.GoodDataSource) -> list[tuple[str, Any, Any]]:
    return parse_export(export_csv(source.workspace_id, source.visualization_id), source.freq)
