"""Helpers of the gooddata pool's tests: a replay server, a gooddata worker pointed at it,
and submitting a command over HTTP until its job is over."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.gooddata_replay import RECORDINGS, ReplayServer
from tests.support import Proc, start_worker, wait_status

#: a token no earlier run has written anywhere: finding it in a log or a record is a leak
TOKEN = "gd-token-" + uuid.uuid4().hex


def need_recordings() -> None:
    if not (RECORDINGS / "README.md").is_file():
        pytest.skip(f"the GoodData recordings are not at {RECORDINGS} (set GOODDATA_RECORDINGS)")


def gooddata_env(env: dict[str, str], replay: ReplayServer, **extra: str) -> dict[str, str]:
    return {
        **env,
        "GOODDATA_HOST": replay.url,
        "GOODDATA_TOKEN": TOKEN,
        "GOODDATA_RATE_PER_S": "0",
        "GOODDATA_EXPORT_POLL_S": "0.02",
        **extra,
    }


def start_gooddata_worker(env: dict[str, str], name: str = "worker-gooddata") -> Proc:
    return start_worker(env, pool="gooddata", name=name)


def run(client: httpx.Client, database_url: str, command: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    """Submit ``command`` and wait until its job succeeded or is dead; the job row."""
    accepted = client.post("/v1/commands", json=command)
    assert accepted.status_code == 202, accepted.text
    return wait_status(database_url, accepted.json()["id"], {"succeeded", "dead", "cancelled"}, timeout)


def succeeded(row: dict[str, Any]) -> dict[str, Any]:
    assert row["status"] == "succeeded", row["error"]
    return row["result"]


def body(request: Any) -> Any:
    return json.loads(request.body) if request.body else None


def writes_to_workspace(replay: ReplayServer, workspace_id: str) -> list[Any]:
    """Writes whose path names ``workspace_id`` as a path segment (so demo_testing is not demo)."""
    return [r for r in replay.requests if r.writes and workspace_id in r.path.split("/")]
