"""Commands of the ``pipelines`` pool: catalog-driven SQL pipelines."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

from contracts.base import CommandBase, Identifier, QualifiedTable


class Setup(CommandBase, tag="pipelines.setup"):
    """Create schemas and tables from the catalog (idempotent)."""

    tables: Annotated[list[QualifiedTable], msgspec.Meta(max_length=1000)] | None = None  # None: all
    initial_data: bool = False
    #: drop and recreate; refused unless this explicit flag is set
    drop_before_create: bool = False


class Run(CommandBase, tag="pipelines.run"):
    pipeline_id: Identifier
    mode: Literal["incremental", "rerun"] = "incremental"
    run_date: dt.date | None = None  # incremental: defaults to today
    start: dt.date | None = None  # rerun window, inclusive
    end: dt.date | None = None


class Retention(CommandBase, tag="pipelines.retention"):
    tables: Annotated[list[QualifiedTable], msgspec.Meta(max_length=1000)] | None = None  # None: all with retention
    run_date: dt.date | None = None
    dry_run: bool = False


class Ingest(CommandBase, tag="pipelines.ingest"):
    table: QualifiedTable
    rows: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1, max_length=1_000_000)]


class Plan(CommandBase, tag="pipelines.plan"):
    """The SQL each node would run, without running it."""

    pipeline_id: Identifier
    mode: Literal["incremental", "rerun"] = "incremental"


COMMANDS = (Setup, Run, Retention, Ingest, Plan)
