"""Python nodes of the example catalog: functions on polars DataFrames.

A node's function gets its ``load`` queries as DataFrames (``frames``) and the run's
parameters, and returns the rows for its target table.
"""

from __future__ import annotations

from typing import Any

import polars as pl


def top_articles(frames: dict[str, pl.DataFrame], params: dict[str, Any]) -> pl.DataFrame:
    """The three articles with the highest amount per day."""
    ranked = frames["sales"].with_columns(
        pl.col("amount").rank("ordinal", descending=True).over("sold_on").cast(pl.Int32).alias("rank")
    )
    return ranked.filter(pl.col("rank") <= 3).select("sold_on", "rank", "article_code", "amount")
