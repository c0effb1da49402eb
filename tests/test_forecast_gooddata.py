"""The gooddata source through the bus: the forecast worker exports a visualization as CSV with
the gooddata pool's client, against the replay server over the real recordings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from devservers import free_port
from tests.gooddata_replay import ReplayServer
from tests.gooddata_support import TOKEN, gooddata_env
from tests.support import API_KEY, start_web, start_worker, wait_status

SCENARIO = "export/test_export_csv_by_visualization_id.yaml"  # customers_trend: 12 months, 2 metrics


@pytest.fixture(scope="module")
def gd_stack(base_env: dict[str, str], replay: ReplayServer) -> Iterator[dict[str, str]]:
    """web + forecast worker on a broker namespace of their own, with GoodData settings."""
    env = gooddata_env(base_env | {"BROKER_NAMESPACE": "gdfc-" + uuid.uuid4().hex[:6], "FORECAST_N_JOBS": "1"}, replay)
    web, url = start_web(env, free_port(), name="web-forecast-gooddata")
    worker = start_worker(env, pool="forecast", name="worker-forecast-gooddata", threads=2)
    yield {"url": url, **env}
    worker.stop()
    web.stop()


def test_a_visualization_export_is_forecast_per_metric(gd_stack: dict[str, str], replay: ReplayServer) -> None:
    replay.load(SCENARIO)
    command = {
        "type": "forecast.forecast",
        "source": {"kind": "gooddata", "workspace_id": "demo", "visualization_id": "customers_trend", "freq": "MS"},
        "prediction_length": 3,
    }
    with httpx.Client(base_url=gd_stack["url"], headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10) as api:
        job_id = api.post("/v1/commands", json=command).json()["id"]
        row = wait_status(gd_stack["DATABASE_URL"], job_id, {"succeeded", "dead"}, timeout=180)
        assert row["status"] == "succeeded", row["error"]
        assert {s["series_id"] for s in row["result"]["per_series"]} == {"Active Customers", "Revenue per Customer"}
        body = api.get(f"/v1/forecasts/{job_id}").json()
    customers = next(s for s in body["series"] if s["series_id"] == "Active Customers")
    # the export runs April 2025 .. March 2026
    assert [p["ts"] for p in customers["forecast"]] == [f"2026-{m:02d}-01T00:00:00Z" for m in (4, 5, 6)]
    assert replay.seen("POST", "/api/v1/actions/workspaces/demo/export/tabular")
    assert TOKEN not in str(row["result"])
