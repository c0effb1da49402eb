"""The forecast pool's local backend through the bus: HTTP command -> forecast worker ->
statsforecast -> forecasts / anomalies tables -> GET /v1/forecasts/{job_id}."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest

from tests.support import Proc, start_worker, wait_status

TIMEOUT = 180  # the first job may wait for the worker to import statsforecast
MODELS = {"Ensemble", "WeightedEnsemble", "AutoETS", "AutoTheta", "AutoARIMA", "AutoCES", "Drift"}
#: README.md's example: two years of monthly visits, peaks in July and August
README_VISITS = [112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118]
README_VISITS += [115, 126, 141, 135, 125, 149, 170, 170, 158, 133, 114, 140]


@pytest.fixture(scope="module")
def forecast_worker(stack: dict[str, str]) -> Iterator[Proc]:
    worker = start_worker(stack, pool="forecast", threads=2)
    yield worker
    worker.stop()


def monthly(n: int, level: float, seed: int) -> list[float]:
    """Trend + yearly season + noise: what AutoETS / AutoTheta should beat naive on."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return [
        round(float(v), 3) for v in level + 0.8 * t + 0.15 * level * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n)
    ]


def submit(client: httpx.Client, command: dict[str, Any]) -> str:
    response = client.post("/v1/commands", json=command)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def finished(stack: dict[str, str], job_id: str, status: str = "succeeded") -> dict[str, Any]:
    row = wait_status(stack["DATABASE_URL"], job_id, {"succeeded", "dead", "failed"}, timeout=TIMEOUT)
    assert row["status"] == status, row["error"]
    return row


def test_inline_series_are_forecast_with_quantiles_backtest_accuracy_and_stored_rows(
    client: httpx.Client, stack: dict[str, str], forecast_worker: Proc
) -> None:
    series = [
        {"series_id": "north", "start": "2020-01-01", "freq": "MS", "values": monthly(60, 100, 1)},
        {"series_id": "south", "start": "2021-03-01T00:00:00Z", "freq": "MS", "values": monthly(48, 50, 2)},
    ]
    job_id = submit(
        client,
        {
            "type": "forecast.forecast",
            "source": {"kind": "inline", "series": series},
            "prediction_length": 6,
            "quantiles": [0.1, 0.5, 0.9],
        },
    )
    row = finished(stack, job_id)
    result = row["result"]
    assert result["backend"] == "local" and result["series"] == 2 and result["horizon"] == 6
    assert result["results"] == f"/v1/forecasts/{job_id}"
    assert sum(result["models"].values()) == 2
    assert result["selection"] == {"cross-validation": 2}
    for item in result["per_series"]:
        assert item["model"] in MODELS
        # 48 and 60 months, horizon 6: three origins, 6 points each, validate the choice
        assert item["selection"] == "cross-validation over 3 origins" and item["validated_points"] == 18
        assert sum(item["weights"].values()) == pytest.approx(1, abs=1e-3)
        # a seasonal series with a trend: a fitted model does far better than the naive scale
        assert 0 < item["mase"] < 2 and 0 < item["smape"] < 20
    assert row["progress"]["percent"] == 100.0

    body = client.get(f"/v1/forecasts/{job_id}").json()
    assert body["status"] == "succeeded" and body["next_cursor"] is None
    assert [s["series_id"] for s in body["series"]] == ["north", "south"]
    north = body["series"][0]
    assert north["accuracy"]["mase"] == result["per_series"][0]["mase"]
    assert north["accuracy"]["validated_points"] == 18 and north["selection"] == "cross-validation over 3 origins"
    stamps = [p["ts"] for p in north["forecast"]]
    assert stamps == [f"2025-{m:02d}-01T00:00:00Z" for m in range(1, 7)]  # the 6 months after Dec 2024
    for point in north["forecast"]:
        q = point["quantiles"]
        assert set(q) == {"0.1", "0.5", "0.9"}
        assert q["0.1"] < point["mean"] < q["0.9"] and q["0.5"] == pytest.approx(point["mean"])
    # the trend goes on: the forecast is above the last year's level
    assert np.mean([p["mean"] for p in north["forecast"]]) > np.mean(series[0]["values"][-12:])

    page = client.get(f"/v1/forecasts/{job_id}", params={"limit": 1}).json()
    assert [s["series_id"] for s in page["series"]] == ["north"]
    rest = client.get(f"/v1/forecasts/{job_id}", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [s["series_id"] for s in rest["series"]] == ["south"] and rest["next_cursor"] is None
    only = client.get(f"/v1/forecasts/{job_id}", params={"series_id": "south"}).json()
    assert [s["series_id"] for s in only["series"]] == ["south"]
    assert client.get(f"/v1/forecasts/{job_id}", params={"limit": 0}).status_code == 422


def test_results_are_upserts_keyed_by_job_series_and_time(
    client: httpx.Client, stack: dict[str, str], forecast_worker: Proc
) -> None:
    """A redelivered job writes the same keys again: no duplicate rows, the later values win."""
    series = [{"series_id": "s", "start": "2024-01-01", "freq": "D", "values": [float(v % 7) for v in range(40)]}]
    job_id = submit(
        client, {"type": "forecast.forecast", "source": {"kind": "inline", "series": series}, "prediction_length": 3}
    )
    finished(stack, job_id)
    from workers.forecast import store

    ts = dt.datetime(2024, 2, 10, tzinfo=dt.UTC)
    row = store.SeriesRow("s", "forecast", "local", "AutoETS", 40, mase=0.5, smape=1.0)
    for mean in (1.0, 2.0):  # the same result written twice, as a redelivery would
        store.save(job_id, [row], forecasts=[("s", ts, mean, {"0.5": mean})])
    with psycopg.connect(stack["DATABASE_URL"]) as conn:
        count, latest = conn.execute(
            "SELECT count(*), max(mean) FILTER (WHERE ts = %s) FROM forecasts WHERE job_id = %s", (ts, job_id)
        ).fetchone()
    assert count == 3 and latest == 2.0


def test_a_sql_source_is_read_in_a_read_only_transaction(
    client: httpx.Client, stack: dict[str, str], forecast_worker: Proc
) -> None:
    with psycopg.connect(stack["DATABASE_URL"], autocommit=True) as conn:
        # users' SQL reads the exposed schemas only (FORECAST_SQL_SCHEMAS; by default demo and the catalog's)
        conn.execute("CREATE SCHEMA IF NOT EXISTS demo")
        conn.execute("CREATE TABLE IF NOT EXISTS demo.fc_sales (store text, day date, amount numeric)")
        conn.execute("TRUNCATE demo.fc_sales")
        start = dt.date(2024, 1, 1)
        with conn.cursor().copy("COPY demo.fc_sales FROM STDIN") as copy:
            for store in ("a", "b"):
                for i in range(42):
                    copy.write_row((store, start + dt.timedelta(days=i), 100 + (i % 7) * 10 + (store == "b") * 50))
    # run as written: no placeholders
    query = "SELECT store, day, amount FROM demo.fc_sales WHERE store LIKE '%' ORDER BY 1, 2"
    job_id = submit(
        client,
        {"type": "forecast.forecast", "source": {"kind": "sql", "query": query, "freq": "D"}, "prediction_length": 7},
    )
    result = finished(stack, job_id)["result"]
    assert result["series"] == 2
    body = client.get(f"/v1/forecasts/{job_id}").json()
    b = next(s for s in body["series"] if s["series_id"] == "b")
    assert b["forecast"][0]["ts"] == "2024-02-12T00:00:00Z"
    # a pure weekly pattern: the chosen model gets it almost exactly
    assert b["accuracy"]["smape"] < 5


#: 2024-01-01 .. 2024-02-29, one row a day
DAYS = "generate_series('2024-01-01'::date, '2024-02-29', '1 day') d"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("DELETE FROM jobs", "must be a SELECT"),
        ("SELECT 1; DROP TABLE jobs", "exactly one statement"),
        (
            "WITH gone AS (DELETE FROM jobs RETURNING id) SELECT id, now(), 1 FROM gone",
            "must only read: DELETE is not allowed",
        ),
        ("SELECT 'x', now() INTO copied FROM jobs", "must only read"),
        ("SELECT 'x' AS s, now() AS ts", "3 columns"),
        (
            f"SELECT 'x', d::date, CASE WHEN d = '2024-01-05' THEN 'n/a' ELSE '1' END FROM {DAYS}",
            "'n/a' is not a number",
        ),
        (
            f"SELECT 'x', d::date, 1 FROM {DAYS} WHERE d <> '2024-01-10'",
            "missing timestamps for frequency 'D': 2024-01-10T00:00:00Z",
        ),
        ("SELECT 'x', '2024-01-01'::date + (g * 2), 1 FROM generate_series(0, 30) g", "missing timestamps"),
        (f"SELECT 'x', d::date, 1 FROM {DAYS} WHERE d < '2024-01-03'", "has 2 values; a forecast needs at least 3"),
        ("SELECT * FROM no_such_table", "source.query failed"),
    ],
)
def test_bad_sql_sources_fail_at_validation_with_a_clear_message(
    client: httpx.Client, stack: dict[str, str], forecast_worker: Proc, query: str, message: str
) -> None:
    job_id = submit(
        client,
        {"type": "forecast.forecast", "source": {"kind": "sql", "query": query, "freq": "D"}, "prediction_length": 7},
    )
    row = finished(stack, job_id, "dead")
    assert row["attempts"] == 1, "bad input is not retried"
    assert message in row["error"]["message"]
    with psycopg.connect(stack["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] > 0  # nothing was deleted
        assert conn.execute("SELECT to_regclass('copied')").fetchone()[0] is None


def test_missing_values_fail_the_local_backend_with_the_timestamp(
    client: httpx.Client, stack: dict[str, str], forecast_worker: Proc
) -> None:
    values: list[float | None] = [1.0 + (i % 3) for i in range(30)]
    values[12] = None
    series = [{"series_id": "gappy", "start": "2024-01-01T06:00:00", "freq": "h", "values": values}]
    job_id = submit(
        client, {"type": "forecast.forecast", "source": {"kind": "inline", "series": series}, "prediction_length": 4}
    )
    error = finished(stack, job_id, "dead")["error"]["message"]
    assert "series 'gappy' has 1 missing value(s), the first at 2024-01-01T18:00:00Z" in error


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        ({"prediction_length": 0}, "$.prediction_length", ">= 1"),
        ({"prediction_length": -3}, "$.prediction_length", ">= 1"),
        ({"series": {"freq": "fortnightly"}}, "$.source.series[0].freq", "Invalid enum value 'fortnightly'"),
        ({"series": {"start": "last tuesday"}}, "$.source.series[0].start", "regex"),
        ({"series": {"start": "2024-02-30"}}, "$.source.series[0].start", "not an ISO 8601 date"),
        ({"series": {"values": [1, "two", 3]}}, "$.source.series[0].values[1]", "Expected `float | null`"),
        ({"series": {"values": [1.0, 2.0]}}, "$.source", "has 2 values; a forecast needs at least 3"),
        ({"backend": "sagemaker", "prediction_length": 20}, "$.source", "a horizon of 20 on the sagemaker backend"),
        ({"quantiles": [0.5, 1.5]}, "$.quantiles[1]", "< 1.0"),
        ({"quantiles": [0.9, 0.9]}, "$.quantiles", "each level may appear once"),
        ({"backend": "gpu"}, "$.backend", "Invalid enum value 'gpu'"),
        ({"context_length": 2}, "$.context_length", "at least 3"),
    ],
)
def test_what_needs_no_data_is_refused_at_the_ingress(
    client: httpx.Client, change: dict[str, Any], path: str, fragment: str
) -> None:
    series = {"series_id": "s", "start": "2024-01-01", "freq": "D", "values": [float(i) for i in range(30)]}
    series |= change.pop("series", {})
    command = {"type": "forecast.forecast", "source": {"kind": "inline", "series": [series]}, "prediction_length": 5}
    response = client.post("/v1/commands", json=command | change)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail["path"] == path and fragment in detail["message"]


def test_the_readme_example_keeps_its_july_and_august_peaks(
    client: httpx.Client, stack: dict[str, str], forecast_worker: Proc
) -> None:
    """24 months: too short to validate on two seasons, long enough to find the season in."""
    series = [{"series_id": "visits", "start": "2024-01-01", "freq": "MS", "values": README_VISITS}]
    command = {"type": "forecast.forecast", "source": {"kind": "inline", "series": series}, "prediction_length": 12}
    job_id = submit(client, command)
    (item,) = finished(stack, job_id)["result"]["per_series"]
    assert item["selection"] == "default for short series" and item["validated_points"] == 0
    assert item["mase"] is None and item["smape"] is None  # nothing was measured: none is invented
    (forecast,) = client.get(f"/v1/forecasts/{job_id}").json()["series"]
    means = {p["ts"][:7]: p["mean"] for p in forecast["forecast"]}
    assert sorted(means, key=means.get)[-2:] in (["2026-07", "2026-08"], ["2026-08", "2026-07"])
    assert means["2026-07"] > 1.15 * means["2026-01"]  # a peak, not a flat line with a wobble


@pytest.mark.parametrize(
    ("freq", "values", "horizon"),
    [("YS", [10.0, 12.0, 11.0], 6), ("QS", [5.0, 7.0, 6.0, 8.0, 7.5, 9.0, 8.0, 10.0, 9.5, 11.0], 8)],
)
def test_short_series_are_forecast_with_the_default_and_no_invented_accuracy(
    client: httpx.Client, stack: dict[str, str], forecast_worker: Proc, freq: str, values: list[float], horizon: int
) -> None:
    series = [{"series_id": "short", "start": "2020-01-01", "freq": freq, "values": values}]
    command = {
        "type": "forecast.forecast",
        "source": {"kind": "inline", "series": series},
        "prediction_length": horizon,
        "quantiles": [0.1, 0.5, 0.9],
    }
    job_id = submit(client, command)
    result = finished(stack, job_id)["result"]
    assert result["accuracy"] == {"mase": None, "smape": None, "series_measured": 0}
    (item,) = result["per_series"]
    assert item["selection"] == "default for short series" and item["model"] == "Ensemble"
    (served,) = client.get(f"/v1/forecasts/{job_id}").json()["series"]
    assert len(served["forecast"]) == horizon and served["accuracy"]["validated_points"] == 0
    for point in served["forecast"]:
        q = point["quantiles"]
        assert q["0.1"] < point["mean"] < q["0.9"]
        assert min(values) / 2 < point["mean"] < max(values) * 2  # a forecast of this series, not of nothing


def test_anomalies_are_scored_flagged_and_served(
    client: httpx.Client, stack: dict[str, str], forecast_worker: Proc
) -> None:
    rng = np.random.default_rng(7)
    values = [round(float(v), 3) for v in 20 + 3 * np.sin(np.arange(120) * 2 * np.pi / 24) + rng.normal(0, 0.3, 120)]
    values[90] += 15  # one obvious spike, at 2024-03-04T18:00Z
    series = [{"series_id": "sensor-1", "start": "2024-03-01", "freq": "h", "values": values}]
    job_id = submit(client, {"type": "forecast.anomalies", "source": {"kind": "inline", "series": series}})
    result = finished(stack, job_id)["result"]
    (only,) = result["per_series"]
    assert result["points"] == 120 and "mean + 3 * std" in result["rule"]
    assert "2024-03-04T18:00:00Z" in only["flagged"]
    assert only["anomalies"] <= 3  # the rule flags the spike (and at most its echo), not the series

    body = client.get(f"/v1/forecasts/{job_id}").json()
    scored = body["series"][0]
    assert len(scored["scores"]) == 120 and scored["threshold"] == only["threshold"]
    spike = scored["scores"][90]
    assert spike["anomaly"] and spike["value"] == values[90] and spike["score"] > scored["threshold"]
    flagged = client.get(f"/v1/forecasts/{job_id}", params={"flagged": "true"}).json()["series"][0]["scores"]
    assert [p["ts"] for p in flagged] == only["flagged"]


def test_an_unknown_job_or_another_pools_job_is_a_404(client: httpx.Client) -> None:
    assert client.get("/v1/forecasts/no-such-job").status_code == 404
    other = client.post("/v1/commands", json={"type": "system.noop"}).json()["id"]
    response = client.get(f"/v1/forecasts/{other}")
    assert response.status_code == 404 and "not a forecast" in response.json()["detail"]["message"]
