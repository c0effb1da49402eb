"""The ``sagemaker_runs`` table: where a SageMaker job keeps its state between deliveries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from bus import db
from bus.queries import load

SQL = load("forecasts")
LIVE = ("training", "serving")


@dataclass
class Run:
    job_id: str
    algorithm: str
    run: int
    name: str  # of the training job, model, endpoint config and endpoint alike
    data_uri: str
    phase: str
    spec: dict[str, Any]
    cancel_requested_at: dt.datetime | None

    @property
    def live(self) -> bool:
        return self.phase in LIVE


def _run(row: dict[str, Any] | None) -> Run | None:
    if row is None:
        return None
    return Run(**{k: row[k] for k in Run.__dataclass_fields__})


def _one(name: str, params: dict[str, Any]) -> dict[str, Any] | None:
    with db.pool().connection() as conn:
        return conn.execute(SQL[name], params).fetchone()


def get(job_id: str) -> Run | None:
    return _run(_one("run_get", {"job_id": job_id}))


def start(job_id: str, algorithm: str, run: int, name: str, data_uri: str, spec: dict[str, Any]) -> Run | None:
    """Record a new run; None when a live one exists already (another delivery got there first)."""
    params = {"job_id": job_id, "algorithm": algorithm, "run": run, "name": name, "data_uri": data_uri}
    return _run(_one("run_start", {**params, "spec": Jsonb(spec)}))


def set_phase(job_id: str, phase: str) -> Run | None:
    return _run(_one("run_phase", {"job_id": job_id, "phase": phase}))
