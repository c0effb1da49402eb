"""Pipelines over HTTP: rows pushed into catalog tables, and the run history of a pipeline.

``PUT /v1/tables/{schema}.{table}/rows`` takes a JSON array of rows. The body is read
as it streams: each batch of rows is checked against the table's column types and
COPYed into a staging table, so a large body is never held whole in memory. Any bad
value: 422 listing the row index and column of every error, and nothing is kept (the
staging table is rolled back). Otherwise the batch is committed and a
``pipelines.ingest`` command (202, a job) upserts it into the table.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.queries import load
from contracts.pipelines import Ingest
from ingress.errors import ApiError, invalid, json_response
from ingress.query import read_limit, reject_unknown
from ingress.routes.commands import accept, header, links
from ingress.state import State
from pipelines_catalog import catalog, staging
from pipelines_catalog.rows import MAX_ERRORS, ArraySplitter, BadBody, RowError, RowSchema

_TABLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}$")
_PIPELINE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$")
#: batch ids derived from (Idempotency-Key, body): a replayed request names the same batch
BATCH_NAMESPACE = uuid.UUID("a3c9e0d4-6a49-4f0e-9d55-3f1f7e2f5b10")
SQL = load("pipelines")
_schemas: dict[tuple[str, str], RowSchema] = {}


def _state(request: Request) -> State:
    return request.app.state.switchyard


def current_catalog(state: State) -> catalog.Catalog:
    try:
        return catalog.current(state.settings.catalog_dir)
    except catalog.CatalogError as err:
        raise ApiError(503, "catalog_invalid", str(err)) from None


def row_schema(cat: catalog.Catalog, table: catalog.Table) -> RowSchema:
    key = (cat.version, table.qualified)
    found = _schemas.get(key)
    if found is None:
        if len(_schemas) > 256:
            _schemas.clear()
        found = _schemas[key] = RowSchema(table)
    return found


class Rejected(Exception):
    def __init__(self, errors: list[RowError], rows: int) -> None:
        super().__init__("rows rejected")
        self.errors, self.rows = errors, rows


async def put_rows(request: Request) -> Response:
    state = _state(request)
    name = request.path_params["table"]
    if not _TABLE.match(name):
        raise invalid("table", "schema.table, lower-case letters, digits and _")
    cat = current_catalog(state)
    table = cat.tables.get(name)
    if table is None:
        raise ApiError(404, "not_found", {"table": name, "message": "no such table in the catalog"})
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ApiError(415, "unsupported_media_type", f"send the rows as application/json, not {ctype!r}")
    limit = state.settings.ingest_max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", {"limit_bytes": limit})
    key = header(request, "idempotency-key")
    trace = header(request, "x-trace-id")
    schema = row_schema(cat, table)
    splitter = ArraySplitter()
    digest = hashlib.sha256()
    batch = staging.new_batch_id()
    errors: list[RowError] = []
    size = 0

    async with state.pool.connection() as conn:
        try:
            async with conn.transaction():
                await conn.execute(staging.create(table, batch))
                async with _Stage(conn, table, batch, schema) as stage:

                    async def load_batches(parts: list[tuple[bytes, int]]) -> None:
                        for raw, first in parts:
                            rows, bad = schema.decode_batch(raw, first)
                            if bad:
                                errors.extend(bad)
                            elif not errors:
                                await stage.write(rows, first)

                    async for chunk in request.stream():
                        size += len(chunk)
                        if size > limit:
                            raise ApiError(413, "too_large", {"limit_bytes": limit})
                        digest.update(chunk)
                        await load_batches(splitter.feed(chunk))
                        if len(errors) >= MAX_ERRORS:
                            break
                    else:
                        await load_batches(splitter.close())
                    if errors:
                        raise Rejected(errors, splitter.count)
                if splitter.count == 0:
                    raise invalid("$", "no rows: send a JSON array with at least one row")
                if key is not None:
                    # the same key and body always name the same batch: a replay changes nothing
                    final = uuid.uuid5(BATCH_NAMESPACE, f"{key}\0{digest.hexdigest()}").hex
                    replay = await table_exists(conn, staging.regclass_name(final))
                    if replay:
                        raise _Replay(final)
                    await conn.execute(staging.rename(batch, final))
                    batch = final
        except Rejected as err:
            shown = [{"row": e.row, "column": e.column, "message": e.message} for e in err.errors[:MAX_ERRORS]]
            detail = {
                "table": name,
                "message": f"{len(shown)} invalid value(s); nothing was loaded",
                "errors": shown,
                "truncated": len(err.errors) >= MAX_ERRORS,
            }
            raise ApiError(422, "invalid_rows", detail) from None
        except BadBody as err:
            raise ApiError(400, "malformed_json", str(err)) from None
        except _Replay as replay:
            batch = replay.batch
        rows = splitter.count
        command = Ingest(table=name, staged=batch)
        try:
            job, created = await accept(state, command, idempotency_key=key, trace_id=trace)
        except Exception:
            await _drop(conn, batch)
            raise
        if not created and not _job_pending(job.status):
            await _drop(conn, batch)
    headers = {"Location": f"/v1/jobs/{job.id}"} | ({} if created else {"Idempotent-Replayed": "true"})
    body = {"id": job.id, "status": job.status, "links": links(job.id), "table": name, "rows": rows, "batch": batch}
    return json_response(body, 202, headers)


class _Stage:
    """The COPY into the staging table: each batch as one CSV block (``RowSchema.copy_csv``), or
    row by row in the text format when a value needs escaping; a change of format ends the
    current COPY and starts the other (same transaction, same rows)."""

    def __init__(self, conn: Any, table: catalog.Table, batch: str, schema: RowSchema) -> None:
        self.conn, self.table, self.batch, self.schema = conn, table, batch, schema
        self.csv_ok = conn.info.encoding == "utf-8"
        self._stack = contextlib.AsyncExitStack()
        self._copy: Any = None
        self._csv: bool | None = None

    async def _start(self, csv: bool) -> Any:
        if self._csv is not csv:
            await self._stack.aclose()
            self._copy = await self._stack.enter_async_context(
                self.conn.cursor().copy(staging.copy(self.table, self.batch, csv=csv))
            )
            self._csv = csv
        return self._copy

    async def write(self, rows: list[tuple[Any, ...]], first: int) -> None:
        payload = self.schema.copy_csv(rows, first) if self.csv_ok else None
        if payload is not None:
            await (await self._start(True)).write(payload)
            return
        copy = await self._start(False)
        for i, row in enumerate(rows):
            await copy.write_row((first + i, *row))

    async def __aenter__(self) -> _Stage:
        await self._stack.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self._stack.__aexit__(*exc)


class _Replay(Exception):
    def __init__(self, batch: str) -> None:
        super().__init__(batch)
        self.batch = batch


async def table_exists(conn: Any, qualified: str) -> bool:
    """Whether the table `schema.name` exists (also the dashboard's check before counting rows)."""
    cur = await conn.execute(staging.EXISTS, (qualified,))
    row = await cur.fetchone()
    return bool(row and row["present"])


async def _drop(conn: Any, batch: str) -> None:
    async with conn.transaction():
        await conn.execute(staging.drop(batch))


def _job_pending(status: str) -> bool:
    """A replayed job that has not run yet still needs its staged batch."""
    return status in ("queued", "running", "failed")


async def list_runs(request: Request) -> Response:
    state = _state(request)
    pipeline_id = request.path_params["pipeline_id"]
    if not _PIPELINE.match(pipeline_id):
        raise invalid("pipeline_id", "letters, digits, _ . -")
    reject_unknown(request.query_params, {"limit"})
    limit = read_limit(request.query_params, 20, 200)
    params = {"pipeline_id": pipeline_id, "limit": limit, "before": None, "before_id": None}
    async with state.pool.connection() as conn:
        cur = await conn.execute(SQL["runs"], params)
        runs = await cur.fetchall()
    if not runs and pipeline_id not in current_catalog(state).pipelines:
        raise ApiError(404, "not_found", {"pipeline_id": pipeline_id, "message": "no such pipeline in the catalog"})
    return json_response({"pipeline_id": pipeline_id, "items": runs})


ROUTES = [
    Route("/v1/tables/{table}/rows", put_rows, methods=["PUT"]),
    Route("/v1/pipelines/{pipeline_id}/runs", list_runs, methods=["GET"]),
]
