"""Python nodes of the test catalog (tests/pipelines_catalog)."""

from __future__ import annotations

from typing import Any

import polars as pl


def double_totals(frames: dict[str, pl.DataFrame], params: dict[str, Any]) -> pl.DataFrame:
    return frames["daily"].with_columns((pl.col("total") * 2).alias("total"))
