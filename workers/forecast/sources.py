"""Where a job's series come from: inline values, a read-only SQL query, a GoodData export."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import logging
import re
import time
from typing import Any

import psycopg
from psycopg import sql

from bus import settings
from bus.errors import PermanentError
from bus.user_sql import UnsafeQuery, parse_read_only
from contracts import forecast
from pipelines_catalog import catalog as catalogs
from workers.forecast.frames import SeriesData, from_inline, from_rows, offset

log = logging.getLogger(__name__)


def load(source: forecast.Source) -> list[SeriesData]:
    if isinstance(source, forecast.InlineSource):
        return from_inline(source)
    if isinstance(source, forecast.SqlSource):
        return from_rows(run_query(source.query), source.freq, "the query")
    return from_rows(gooddata_rows(source), source.freq, "the GoodData export")


# --- SQL -------------------------------------------------------------------------------------


def check_query(text: str) -> None:
    """One read-only query by the check every user's SQL gets (bus/user_sql.py), or a PermanentError.

    The text is run as it is, never combined with other SQL; this check, the READ ONLY transaction
    and the reader role are three independent fences.
    """
    try:
        parse_read_only(text)
    except UnsafeQuery as err:
        raise PermanentError(f"source.query {err}") from None


def readable_schemas() -> list[str]:
    """FORECAST_SQL_SCHEMAS, or by default ``demo`` and the pipelines catalog's schemas."""
    s = settings.get()
    if s.forecast_sql_schemas:
        return [name.strip() for name in s.forecast_sql_schemas.split(",") if name.strip()]
    names = {"demo"}
    with contextlib.suppress(catalogs.CatalogError):  # no catalog here: the demo schema only
        names |= {table.schema for table in catalogs.current(s.catalog_dir).tables.values()}
    return sorted(names)


def grant_reads(conn: psycopg.Connection[Any], role: str, schemas: list[str]) -> None:
    """Let ``role`` read the exposed schemas' tables, those created since included. Where this
    login may not grant, the role keeps what an operator granted it."""
    existing = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (schemas,))}
    for schema in sorted(existing):
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), sql.Identifier(role))
                )
                conn.execute(
                    sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                        sql.Identifier(schema), sql.Identifier(role)
                    )
                )
        except psycopg.errors.InsufficientPrivilege:
            log.info("the SQL source's login may not grant reads on schema %s to %s", schema, role)


def run_query(text: str) -> list[tuple[Any, ...]]:
    """The query's rows, read as the reader role in a READ ONLY transaction, within one deadline
    for the whole query (every fetch's statement timeout is what is left of it) and a row and byte
    limit that bound the worker's memory."""
    check_query(text)
    s = settings.get()
    role = s.forecast_sql_role
    deadline = time.monotonic() + s.forecast_sql_timeout_s
    try:
        with psycopg.connect(s.forecast_sql_url or s.database, connect_timeout=10) as conn:
            grant_reads(conn, role, readable_schemas())
            conn.commit()
            conn.read_only = True
            with conn.transaction():
                try:
                    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                except (psycopg.errors.InvalidParameterValue, psycopg.errors.InsufficientPrivilege):
                    raise PermanentError(
                        f"the SQL source runs as role {role!r} (FORECAST_SQL_ROLE), which is missing or not "
                        "granted to this login; migration 0007 creates it"
                    ) from None
                # a server-side cursor: DECLARE accepts nothing but a query, a fourth fence
                with conn.cursor(name="forecast_source") as cur:
                    _remaining(conn, deadline, s.forecast_sql_timeout_s)
                    cur.execute(text)
                    columns = len(cur.description or ())
                    if columns != 3:
                        raise PermanentError(
                            f"source.query must return 3 columns (series_id, ts, value); it returns {columns}"
                        )
                    rows: list[tuple[Any, ...]] = []
                    size = 0
                    while True:
                        _remaining(conn, deadline, s.forecast_sql_timeout_s)
                        batch = cur.fetchmany(10_000)
                        if not batch:
                            return rows
                        rows.extend(batch)
                        size += sum(_ROW_OVERHEAD + len(str(r[0])) for r in batch)
                        if len(rows) > s.forecast_sql_max_rows:
                            raise PermanentError(
                                f"source.query returned more than FORECAST_SQL_MAX_ROWS={s.forecast_sql_max_rows} rows"
                            )
                        if size > s.forecast_sql_max_bytes:
                            raise PermanentError(
                                f"source.query returned more than FORECAST_SQL_MAX_BYTES={s.forecast_sql_max_bytes}"
                                " bytes"
                            )
    except psycopg.errors.QueryCanceled:
        raise _too_long(s.forecast_sql_timeout_s) from None
    except (
        psycopg.errors.ProgrammingError,
        psycopg.errors.DataError,
        psycopg.errors.ReadOnlySqlTransaction,
    ) as err:
        # the query's own fault (syntax, unknown table, no privilege, a write): retrying cannot help
        raise PermanentError(f"source.query failed: {str(err).strip().splitlines()[0][:500]}") from None


#: what a fetched row costs in the worker besides its series id (tuple, timestamp, number)
_ROW_OVERHEAD = 200


def _too_long(limit_s: float) -> PermanentError:
    return PermanentError(f"source.query ran longer than FORECAST_SQL_TIMEOUT_S={limit_s:g} s")


def _remaining(conn: psycopg.Connection[Any], deadline: float, limit_s: float) -> None:
    """Give the next statement what is left of the query's deadline (a per-statement timeout alone
    would restart with every fetch)."""
    left_ms = int((deadline - time.monotonic()) * 1000)
    if left_ms <= 0:
        raise _too_long(limit_s)
    conn.execute("SELECT set_config('statement_timeout', %s, true)", (str(left_ms),))


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
