"""Reading a model's predictions from ``results`` and refusing bad data with a clear reason."""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import polars as pl

from bus import db
from bus.errors import PermanentError
from bus.queries import load
from contracts.metrics import Window

SQL = load("metrics")


@dataclass(frozen=True)
class Predictions:
    """The window's predictions, flattened over its rows (newest row first)."""

    frame: pl.DataFrame  # columns y_true, y_pred and, when every row has them, y_score
    rows: int

    @property
    def n(self) -> int:
        return self.frame.height


def _array(text: str | None, what: str, row_id: int) -> list[Any]:
    try:
        value = msgspec.json.decode(text or "null")
    except msgspec.DecodeError as err:
        # e.g. a number out of range (1e400 would be infinity)
        raise PermanentError(f"results row {row_id}: {what} is not valid JSON: {err}") from None
    if not isinstance(value, list):
        raise PermanentError(f"results row {row_id}: {what} is not a JSON array")
    return value


def _label_kind(values: list[Any], what: str, row_id: int) -> type:
    kinds = {bool if isinstance(v, bool) else float if isinstance(v, int | float) else type(v) for v in values}
    if type(None) in kinds:
        raise PermanentError(f"results row {row_id}: {what} contains null")
    if len(kinds) > 1:
        names = sorted("number" if k is float else k.__name__ for k in kinds)
        raise PermanentError(f"results row {row_id}: {what} mixes label types ({', '.join(names)})")
    kind = kinds.pop()
    if kind not in (bool, float, str):
        raise PermanentError(f"results row {row_id}: {what} holds {kind.__name__} values, not labels or numbers")
    if kind is float and not all(math.isfinite(v) for v in values):
        raise PermanentError(f"results row {row_id}: {what} contains NaN or infinity")
    return kind


def fetch(model_id: uuid.UUID, window: Window | None) -> list[dict[str, Any]]:
    with db.pool().connection() as conn:
        if window is not None and window.since is not None:
            since = window.since.replace(tzinfo=None) if window.since.tzinfo is None else window.since
            return conn.execute(SQL["since"], {"model_id": model_id, "since": since}).fetchall()
        limit = window.last_n if window is not None and window.last_n is not None else 1
        return conn.execute(SQL["newest"], {"model_id": model_id, "limit": limit}).fetchall()


def parse(rows: list[dict[str, Any]], model_id: uuid.UUID) -> Predictions:
    if not rows:
        raise PermanentError(f"no results for model {model_id} in the requested window")
    try:
        return _parse_window(rows)
    except _NeedsRowByRow:
        return _parse_rows(rows)  # finds the bad row and says what is wrong with it


class _NeedsRowByRow(Exception):
    pass


_LABEL_KINDS = ({int, float}, {int}, {float}, {bool}, {str})


def _decode_all(texts: list[str | None]) -> list[Any]:
    try:
        values = msgspec.json.decode("[" + ",".join(t or "null" for t in texts) + "]")
    except msgspec.DecodeError:
        raise _NeedsRowByRow from None
    if not all(type(v) is list for v in values):
        raise _NeedsRowByRow
    return values


def _parse_window(rows: list[dict[str, Any]]) -> Predictions:
    """The whole window in a few C-speed passes; any doubt goes to the row-by-row path."""
    trues, preds = _decode_all([r["y_true"] for r in rows]), _decode_all([r["y_pred"] for r in rows])
    lengths = list(map(len, trues))
    if lengths != list(map(len, preds)) or 0 in lengths:
        raise _NeedsRowByRow
    y_true, y_pred = list(itertools.chain.from_iterable(trues)), list(itertools.chain.from_iterable(preds))
    if set(map(type, y_true)) | set(map(type, y_pred)) not in _LABEL_KINDS:
        raise _NeedsRowByRow
    columns: dict[str, Any] = {"y_true": y_true, "y_pred": y_pred}
    if all(r["y_score"] is not None for r in rows):
        scores = _decode_all([r["y_score"] for r in rows])
        if list(map(len, scores)) != lengths:
            raise _NeedsRowByRow
        columns["y_score"] = list(itertools.chain.from_iterable(scores))
    return Predictions(pl.DataFrame(columns, strict=False), len(rows))


def _parse_rows(rows: list[dict[str, Any]]) -> Predictions:
    y_true: list[Any] = []
    y_pred: list[Any] = []
    y_score: list[Any] | None = []
    kind: type | None = None
    for row in rows:
        t = _array(row["y_true"], "y_true", row["id"])
        p = _array(row["y_pred"], "y_pred", row["id"])
        if not t:
            raise PermanentError(f"results row {row['id']}: y_true and y_pred are empty")
        if len(t) != len(p):
            raise PermanentError(f"results row {row['id']}: y_true has {len(t)} values, y_pred {len(p)}")
        for values, what in ((t, "y_true"), (p, "y_pred")):
            this = _label_kind(values, what, row["id"])
            if kind is None:
                kind = this
            elif this is not kind:
                raise PermanentError(f"results row {row['id']}: {what} holds labels of another type than the window's")
        y_true += t
        y_pred += p
        if y_score is not None and row["y_score"] is not None:
            s = _array(row["y_score"], "y_score", row["id"])
            if len(s) != len(t):
                raise PermanentError(f"results row {row['id']}: y_score has {len(s)} values, y_true {len(t)}")
            y_score += s
        else:
            y_score = None  # scores are used only when every row has them
    columns: dict[str, Any] = {"y_true": y_true, "y_pred": y_pred}
    if y_score:
        columns["y_score"] = y_score
    return Predictions(pl.DataFrame(columns, strict=False), len(rows))


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """A large window allocates millions of small lists and tuples at once. They hold no
    cycles, but each allocation burst triggers the cyclic collector, which then walks
    everything alive: without the pause, reading 1,000,000 rows takes several times longer."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_predictions(model_id: uuid.UUID, window: Window | None) -> Predictions:
    with no_gc():
        return parse(fetch(model_id, window), model_id)
