"""Commands of the ``pipelines`` pool: catalog-driven SQL pipelines.

Tables and pipelines are declared in the catalog (YAML files under ``CATALOG_DIR``);
these commands name them. Dates are ISO dates (``2024-01-31``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

from contracts.base import CommandBase, Identifier, QualifiedTable

Tables = Annotated[list[QualifiedTable], msgspec.Meta(max_length=1000)]
#: a batch staged by ``PUT /v1/tables/{schema}.{table}/rows`` (32 hex digits)
BatchId = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}$")]


class Setup(CommandBase, tag="pipelines.setup"):
    """Create schemas and tables from the catalog (idempotent)."""

    tables: Tables | None = None  # None: every table of the catalog
    #: load each table's ``initial`` rows (upserted: running it twice changes nothing)
    initial_data: bool = False
    #: drop and recreate the tables (their data is lost); refused unless ``confirm_drop`` is also true
    drop_before_create: bool = False
    confirm_drop: bool = False

    def __post_init__(self) -> None:
        if self.drop_before_create and not self.confirm_drop:
            raise ValueError("drop_before_create deletes the tables' data: set confirm_drop to true as well")


class Run(CommandBase, tag="pipelines.run"):
    """Run a pipeline's nodes in dependency order.

    ``incremental`` loads the rows newer than each target's watermark (upsert by primary
    key) and advances it in the same transaction. ``rerun`` deletes and recomputes the
    window ``start`` .. ``end`` (inclusive; ``end`` defaults to ``start``) in one
    transaction per node: running it twice gives the same tables.
    """

    pipeline_id: Identifier
    mode: Literal["incremental", "rerun"] = "incremental"
    run_date: dt.date | None = None  # defaults to today (UTC); the upper bound of an incremental run
    start: dt.date | None = None  # rerun window, inclusive
    end: dt.date | None = None
    #: only these nodes, in dependency order (the others are assumed loaded); None: every node
    nodes: Annotated[list[Identifier], msgspec.Meta(min_length=1, max_length=1000)] | None = None
    #: the upstream run (job id) whose success started this run; set by the pool for triggers
    triggered_by: Annotated[str, msgspec.Meta(max_length=64)] | None = None

    def __post_init__(self) -> None:
        if self.mode == "rerun":
            if self.start is None:
                raise ValueError("a rerun needs start (and optionally end): the date window to recompute")
            if self.end is not None and self.end < self.start:
                raise ValueError("end is before start")
        elif self.start is not None or self.end is not None:
            raise ValueError("start and end are for mode rerun; an incremental run starts at the watermark")


class Retention(CommandBase, tag="pipelines.retention"):
    """Move rows older than each table's retention into ``<schema>_bk.<table>`` and delete them."""

    tables: Tables | None = None  # None: every table with a retention
    run_date: dt.date | None = None  # the cutoff is counted back from this date (default today, UTC)
    dry_run: bool = False  # report the counts, change nothing


class Ingest(CommandBase, tag="pipelines.ingest"):
    """Upsert rows into a catalog table: inline ``rows`` (small batches), or a batch the
    HTTP route ``PUT /v1/tables/{schema}.{table}/rows`` already validated and staged."""

    table: QualifiedTable
    rows: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1, max_length=100_000)] | None = None
    staged: BatchId | None = None

    def __post_init__(self) -> None:
        if (self.rows is None) == (self.staged is None):
            raise ValueError("give exactly one of rows (inline) or staged (a batch id from the ingest route)")


class Plan(CommandBase, tag="pipelines.plan"):
    """The SQL each node would run, without running it."""

    pipeline_id: Identifier
    mode: Literal["incremental", "rerun"] = "incremental"
    run_date: dt.date | None = None
    start: dt.date | None = None  # rerun window (default: run_date)
    end: dt.date | None = None


COMMANDS = (Setup, Run, Retention, Ingest, Plan)
