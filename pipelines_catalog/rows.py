"""Rows pushed as JSON, checked against a catalog table's column types.

The fast path decodes a batch of rows straight into a msgspec Struct made for the
table (validation in C). Only a batch that fails is checked again cell by cell, so
the caller gets the row index and column of every error, not just the first.

``split_array`` turns a JSON array arriving in chunks into batches of rows, so a
large body is validated and loaded while it streams, never held whole in memory.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterable, Iterator
from typing import Annotated, Any

import msgspec

from contracts import storable
from contracts.nesting import MAX_DEPTH, deeper_than
from pipelines_catalog.catalog import Column, Table
from pipelines_catalog.types import ColumnType

#: the 422 lists at most this many errors (and says it stopped)
MAX_ERRORS = 1000
#: a row bigger than this cannot be split out of a stream
MAX_ROW_BYTES = 16 * 1024 * 1024


_ENCODE = msgspec.json.Encoder().encode
_NUL_ESCAPE = b"\\u0000"


class RowError(msgspec.Struct, frozen=True):
    row: int
    column: str | None
    message: str


class BadBody(ValueError):
    """The body is not a JSON array of objects."""


def _python_type(ctype: ColumnType) -> Any:
    kind = ctype.kind
    if kind == "text":
        return Annotated[str, msgspec.Meta(max_length=ctype.size[0])] if ctype.size else str
    if kind == "int":
        bound = 2 ** (8 * ctype.size[0] - 1)
        return Annotated[int, msgspec.Meta(ge=-bound, le=bound - 1)]
    return {
        "numeric": decimal.Decimal,
        "float": float,
        "bool": bool,
        "date": dt.date,
        "timestamp": Annotated[dt.datetime, msgspec.Meta(tz=False)],
        "timestamptz": Annotated[dt.datetime, msgspec.Meta(tz=True)],
        "json": Any,
        "uuid": uuid.UUID,
    }[kind]


def _field_type(column: Column) -> Any:
    base = _python_type(column.type)
    # a column with a default may be omitted or null: the default applies
    return base | None if (column.nullable or column.has_default) and base is not Any else base


def _required(column: Column) -> bool:
    return not column.nullable and not column.has_default


class RowSchema:
    """How the rows of one table are decoded and turned into COPY rows."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.columns = list(table.columns.values())
        self.names = [c.name for c in self.columns]
        fields: list[Any] = []
        for i, column in enumerate(self.columns):
            ftype = _field_type(column)
            if _required(column):
                fields.append((f"c{i}", ftype, msgspec.field(name=column.name)))
            else:
                fields.append((f"c{i}", ftype, msgspec.field(name=column.name, default=None)))
        # kw_only: required and optional fields may interleave, so fields stay in column order
        struct = msgspec.defstruct("Row", fields, forbid_unknown_fields=True, kw_only=True)
        self._batch = msgspec.json.Decoder(list[struct])
        self._cell = {c.name: msgspec.json.Decoder(_field_type(c)) for c in self.columns}
        self._json = [i for i, c in enumerate(self.columns) if c.type.kind == "json"]
        self._numeric = any(c.type.kind == "numeric" for c in self.columns)

    def _tuples(self, structs: list[Any]) -> list[tuple[Any, ...]]:
        astuple = msgspec.structs.astuple
        if not self._json:
            return [astuple(s) for s in structs]
        out = []
        for s in structs:
            row = list(astuple(s))
            for j in self._json:
                if row[j] is not None:
                    row[j] = msgspec.json.encode(row[j]).decode()
            out.append(tuple(row))
        return out

    def decode_batch(self, raw_array: bytes, first_index: int) -> tuple[list[tuple[Any, ...]], list[RowError]]:
        """Rows of a JSON array (bytes) in column order, or the errors of every bad cell."""
        try:
            rows = self._batch.decode(raw_array)
        except msgspec.ValidationError:
            rows = None
        # JSON can carry a NUL only as the escape \u0000: without one, no cell holds it
        if rows is not None and _NUL_ESCAPE not in raw_array:
            return self._tuples(rows), []
        try:
            items = msgspec.json.decode(raw_array, type=list[msgspec.Raw])
        except msgspec.DecodeError as err:
            raise BadBody(f"malformed JSON near row {first_index}: {err}") from None
        errors: list[RowError] = []
        for offset, item in enumerate(items):
            errors.extend(self.check_row(item, first_index + offset))
        if rows is not None and not errors:  # the escape was text ("\\u0000"), not a NUL
            return self._tuples(rows), []
        return [], errors

    def check_row(self, raw: bytes | msgspec.Raw, index: int) -> list[RowError]:
        try:
            obj = msgspec.json.decode(raw, type=dict[str, msgspec.Raw])
        except msgspec.ValidationError:
            return [RowError(index, None, "a row is a JSON object of column: value")]
        errors = [RowError(index, key, "not a column of the table") for key in obj if key not in self._cell]
        for column in self.columns:
            if column.name not in obj:
                if _required(column):
                    errors.append(RowError(index, column.name, "missing: the column is not nullable"))
                continue
            try:
                value = self._cell[column.name].decode(obj[column.name])
            except msgspec.ValidationError as err:
                message = str(err).split(" - at ")[0].replace("`", "'")
                if message == "Expected 'null'" or "got 'null'" in message:
                    message = "null: the column is not nullable"
                errors.append(RowError(index, column.name, f"{message} ({column.type.sql})"))
                continue
            # Postgres text and jsonb refuse NUL: a cell holding one (a json cell: in any string
            # or key of it) is named here rather than failing the COPY
            if _NUL_ESCAPE in bytes(obj[column.name]) and (found := storable.problem(value, column.name)) is not None:
                where = "" if found[0] == column.name else f"at {found[0]}: "
                errors.append(RowError(index, column.name, f"{where}{found[1]} ({column.type.sql})"))
        return errors

    def copy_csv(self, rows: list[tuple[Any, ...]], first: int) -> bytes | None:
        """``rows`` (from ``decode_batch``) as the data of ``staging.copy(..., csv=True)``, or None.

        msgspec's JSON of a row is already a CSV line for ``COPY (FORMAT csv, NULL 'null')``
        when no value needed a JSON escape: numbers, ``true``, ``false`` and ``null`` bare, every
        string (text, and numeric, date, timestamp, uuid and json values as msgspec writes them)
        quoted verbatim. So the batch is encoded once, as ``[[ordinal,[value, ...]], ...]``, and
        its brackets between the rows become line ends. None (write the rows one by one in the
        text format instead) when a value has an escape (a quote, a backslash, a control
        character) or a bracket sequence of the layout (counted), or a numeric NaN (which
        msgspec and psycopg spell differently).
        """
        if not rows:
            return b""
        payload = _ENCODE(list(zip(range(first, first + len(rows)), rows, strict=True)))
        if b"\\" in payload or (self._numeric and b"NaN" in payload):
            return None
        # [[0,[a,b]],[1,[c,d]]] -> 0,[a,b]],[1,[c,d -> 0,[a,b NL 1,[c,d -> 0,a,b NL 1,c,d
        body = payload[2:-3]
        if body.count(b"]],[") != len(rows) - 1:
            return None
        body = body.replace(b"]],[", b"\n")
        if body.count(b",[") != len(rows):
            return None
        return body.replace(b",[", b",") + b"\n"

    def validate(self, rows: Iterable[dict[str, Any]]) -> tuple[list[tuple[Any, ...]], list[RowError]]:
        """Rows given as Python objects (inline in a command, or a catalog's initial data)."""
        return self.decode_batch(msgspec.json.encode(list(rows), enc_hook=str), 0)


class ArraySplitter:
    """Batches ``(b"[row, row, ...]", rows_before)`` of a JSON array fed in chunks.

    A batch ends at a ``}`` that closes a row: the candidate is checked by decoding the
    batch's syntax; a ``}`` inside a string or a nested object makes the check fail and an
    earlier one is tried. Raises ``BadBody`` when the body is not a JSON array of objects.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._started = False
        self.count = 0
        self._raw_list = msgspec.json.Decoder(list[msgspec.Raw])

    def feed(self, chunk: bytes) -> list[tuple[bytes, int]]:
        buf = self._buf
        buf += chunk
        if not self._started:
            stripped = buf.lstrip()
            if not stripped:
                return []
            if stripped[:1] != b"[":
                raise BadBody("the body must be a JSON array of row objects")
            del buf[: len(buf) - len(stripped) + 1]
            self._started = True
        out = []
        end = len(buf)
        for _ in range(8):
            cut = buf.rfind(b"}", 0, end)
            if cut < 0:
                break
            segment = bytes(buf[: cut + 1]).lstrip().removeprefix(b",")
            if deeper_than(segment, MAX_DEPTH - 1):
                raise BadBody(f"a row near row {self.count} nests deeper than {MAX_DEPTH} levels")
            try:
                items = self._raw_list.decode(b"[" + segment + b"]")
            except msgspec.DecodeError:
                end = cut
                continue
            del buf[: cut + 1]
            out.append((b"[" + segment + b"]", self.count))
            self.count += len(items)
            break
        if len(buf) > MAX_ROW_BYTES:
            raise BadBody(f"no complete row in {MAX_ROW_BYTES} bytes near row {self.count}: not an array of objects?")
        return out

    def close(self) -> list[tuple[bytes, int]]:
        if not self._started:
            raise BadBody("the body is empty: send a JSON array of rows")
        rest = bytes(self._buf).strip().removeprefix(b",").lstrip()
        if rest == b"]":
            return []
        if not rest.endswith(b"]"):
            raise BadBody("the JSON array is not closed (truncated body?)")
        if deeper_than(rest, MAX_DEPTH - 1):
            raise BadBody(f"a row near row {self.count} nests deeper than {MAX_DEPTH} levels")
        try:
            items = self._raw_list.decode(b"[" + rest)
        except msgspec.DecodeError as err:
            raise BadBody(f"malformed JSON near row {self.count}: {err}") from None
        if not items:
            return []
        first, self.count = self.count, self.count + len(items)
        return [(b"[" + rest, first)]


def split_array(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, int]]:
    """``ArraySplitter`` over an iterable of chunks."""
    splitter = ArraySplitter()
    for chunk in chunks:
        yield from splitter.feed(chunk)
    yield from splitter.close()
