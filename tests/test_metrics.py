"""The metrics pool: the original service's API, metrics equal to scikit-learn's, history,
alerts, and bad data that fails the job and writes nothing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
import redis
from sklearn import metrics as skm

from tests.receivers import WebhookReceiver
from tests.support import ROOT, start_worker, wait_for, wait_status


@pytest.fixture(scope="module", autouse=True)
def metrics_worker(stack: dict[str, str]) -> Iterator[None]:
    worker = start_worker(stack, pool="metrics")
    yield
    worker.stop()


def add_results(database_url: str, model_id: uuid.UUID | str, *rows: tuple[Any, Any] | tuple[Any, Any, Any]) -> None:
    with psycopg.connect(database_url) as conn:
        for i, row in enumerate(rows):
            y_true, y_pred, *score = row
            conn.execute(
                "INSERT INTO results (model_id, y_true, y_pred, y_score, timestamp)"
                " VALUES (%s, %s, %s, %s, now() - make_interval(secs => %s))",
                (
                    str(model_id),
                    y_true if isinstance(y_true, str) else json.dumps(y_true),
                    y_pred if isinstance(y_pred, str) else json.dumps(y_pred),
                    json.dumps(score[0]) if score else None,
                    len(rows) - i,  # later rows are newer
                ),
            )


def run(client: httpx.Client, stack: dict[str, str], command: dict, status: str = "succeeded") -> dict:
    accepted = client.post("/v1/commands", json={"type": "metrics.compute", **command})
    assert accepted.status_code == 202, accepted.text
    job = wait_status(stack["DATABASE_URL"], accepted.json()["id"], {status, "dead", "succeeded"})
    assert job["status"] == status, job["error"] or job["result"]  # a wrong outcome says so, not a TypeError
    return job


def history_rows(database_url: str, model_id: uuid.UUID) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM metric_history WHERE model_id = %s", (model_id,)).fetchone()[0]  # type: ignore[index]


def test_the_original_flow_schedule_results_replace_delete(client: httpx.Client, stack: dict[str, str]) -> None:
    model = uuid.uuid4()
    add_results(stack["DATABASE_URL"], model, ([1, 0, 1, 1], [1, 0, 0, 1]))
    scheduled = client.post("/schedule", json={"model_id": str(model), "cron_expression": "*/2 * * * * *"})
    assert scheduled.status_code == 200 and scheduled.json()["status"] == "scheduled"

    result = wait_for(lambda: (r := client.get(f"/results/{model}")).status_code == 200 and r.json(), 30, 0.2, "result")
    assert result["model_id"] == str(model) and result["accuracy"] == 0.75 and result["n"] == 4
    assert result["computed_at"]
    assert redis.Redis.from_url(stack["REDIS_URL"]).get(f"result_{model}") == b"0.75"  # the original's key
    wait_for(lambda: history_rows(stack["DATABASE_URL"], model) >= 2, 30, 0.2, "a second run")

    replaced = client.post("/schedule", json={"model_id": str(model), "cron_expression": "0 0 1 1 *"})
    assert replaced.status_code == 200
    time.sleep(1.5)  # a slot already emitted may still finish
    settled = history_rows(stack["DATABASE_URL"], model)
    time.sleep(4)
    assert history_rows(stack["DATABASE_URL"], model) == settled, "the replaced every-2-seconds schedule still runs"
    with psycopg.connect(stack["DATABASE_URL"]) as conn:
        assert conn.execute(
            "SELECT cron_expression FROM metrics_executions WHERE model_id = %s", (model,)
        ).fetchone() == ("0 0 1 1 *",)

    assert client.delete(f"/schedule/{model}").json() == {"status": "deleted", "model_id": str(model)}
    assert client.delete(f"/schedule/{model}").status_code == 404
    assert client.get(f"/v1/schedules/metrics-{model}").status_code == 404


def test_results_of_an_unknown_model_is_404(client: httpx.Client) -> None:
    missing = client.get(f"/results/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["error"] == "No results found"
    assert client.get("/results/not-a-uuid").status_code == 422


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"model_id": "nope", "cron_expression": "* * * * *"}, "$.model_id"),
        ({"model_id": "6d6a8224-de68-4603-b2db-63e01d34f020", "cron_expression": "61 * * * *"}, "$.cron_expression"),
        ({"model_id": "6d6a8224-de68-4603-b2db-63e01d34f020", "cron_expression": "* * * *"}, "$.cron_expression"),
        ({"model_id": "6d6a8224-de68-4603-b2db-63e01d34f020"}, "$.cron_expression"),
        ({"model_id": "6d6a8224-de68-4603-b2db-63e01d34f020", "cron_expression": "* * * * *", "x": 1}, "$.x"),
    ],
)
def test_a_bad_schedule_is_refused_and_the_old_one_stays(
    client: httpx.Client, stack: dict[str, str], body: dict, path: str
) -> None:
    model = "6d6a8224-de68-4603-b2db-63e01d34f020"
    assert client.post("/schedule", json={"model_id": model, "cron_expression": "0 0 1 1 *"}).status_code == 200
    before = client.get(f"/v1/schedules/metrics-{model}").json()
    refused = client.post("/schedule", json=body)
    assert refused.status_code == 422
    assert refused.json()["detail"]["path"] == path
    assert client.get(f"/v1/schedules/metrics-{model}").json()["cron"] == before["cron"] == "0 0 1 1 *"
    with psycopg.connect(stack["DATABASE_URL"]) as conn:
        rows = conn.execute("SELECT cron_expression FROM metrics_executions WHERE model_id = %s", (model,)).fetchall()
    assert rows == [("0 0 1 1 *",)]


ALL_CLASSIFICATION = ["accuracy", "balanced_accuracy", "precision", "recall", "f1", "confusion_matrix"]


def test_classification_metrics_equal_scikit_learns(client: httpx.Client, stack: dict[str, str]) -> None:
    rng = np.random.default_rng(7)
    model = uuid.uuid4()
    rows = []
    for _ in range(3):
        y_true = rng.integers(0, 2, 40)
        score = np.clip(y_true * 0.6 + rng.random(40) * 0.5, 0, 1)
        rows.append((y_true.tolist(), (score > 0.5).astype(int).tolist(), score.tolist()))
    add_results(stack["DATABASE_URL"], model, *rows)
    job = run(
        client,
        stack,
        {"model_id": str(model), "metrics": [*ALL_CLASSIFICATION, "roc_auc", "log_loss"], "window": {"last_n": 3}},
    )
    assert job["status"] == "succeeded", job["error"]
    got = job["result"]["metrics"]
    t = np.concatenate([r[0] for r in reversed(rows)])
    p = np.concatenate([r[1] for r in reversed(rows)])
    s = np.concatenate([r[2] for r in reversed(rows)])
    # newest row first in the window; the metrics do not depend on the order
    assert job["result"]["n"] == 120 and job["result"]["rows"] == 3
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(t, p), abs=1e-12)
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(t, p), abs=1e-12)
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        assert got[name]["macro"] == pytest.approx(fn(t, p, average="macro", zero_division=0), abs=1e-12)
        assert got[name]["weighted"] == pytest.approx(fn(t, p, average="weighted", zero_division=0), abs=1e-12)
        per = fn(t, p, average=None, zero_division=0)
        assert got[name]["per_class"] == pytest.approx({"0": per[0], "1": per[1]}, abs=1e-12)
    assert got["confusion_matrix"] == {"labels": ["0", "1"], "matrix": skm.confusion_matrix(t, p).tolist()}
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(t, s), abs=1e-12)
    assert got["log_loss"] == pytest.approx(skm.log_loss(t, s), abs=1e-12)


def test_string_labels_multiclass_scores_and_regression(client: httpx.Client, stack: dict[str, str]) -> None:
    model = uuid.uuid4()
    t, p = ["cat", "dog", "bird", "dog", "cat"], ["cat", "dog", "dog", "dog", "bird"]
    probs = [[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.2, 0.1, 0.7], [0.5, 0.4, 0.1]]  # bird, cat, dog
    add_results(stack["DATABASE_URL"], model, (t, p, probs))
    job = run(client, stack, {"model_id": str(model), "metrics": ["accuracy", "f1", "roc_auc", "log_loss"]})
    got = job["result"]["metrics"]
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(t, p), abs=1e-12)
    assert got["f1"]["per_class"].keys() == {"bird", "cat", "dog"}
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(t, probs, multi_class="ovr"), abs=1e-12)
    assert got["log_loss"] == pytest.approx(skm.log_loss(t, probs, labels=["bird", "cat", "dog"]), abs=1e-12)

    numeric = uuid.uuid4()
    yt, yp = [3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 8.0]
    add_results(stack["DATABASE_URL"], numeric, (yt, yp))
    job = run(client, stack, {"model_id": str(numeric), "metrics": ["mae", "rmse", "mape", "r2"]})
    got = job["result"]["metrics"]
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(yt, yp), abs=1e-12)
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(yt, yp), abs=1e-12)
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(yt, yp), abs=1e-12)
    assert got["r2"] == pytest.approx(skm.r2_score(yt, yp), abs=1e-12)


def test_windows_newest_row_last_n_and_since(client: httpx.Client, stack: dict[str, str]) -> None:
    model = uuid.uuid4()
    add_results(stack["DATABASE_URL"], model, ([1, 1], [0, 0]), ([1, 1], [1, 0]), ([1, 1], [1, 1]))
    assert run(client, stack, {"model_id": str(model)})["result"]["accuracy"] == 1.0  # the newest row only
    assert run(client, stack, {"model_id": str(model), "window": {"last_n": 2}})["result"]["accuracy"] == 0.75
    everything = run(client, stack, {"model_id": str(model), "window": {"since": "2000-01-01T00:00:00Z"}})
    assert everything["result"]["accuracy"] == 0.5 and everything["result"]["rows"] == 3
    history = client.get(f"/v1/models/{model}/metrics", params={"metric": "accuracy"}).json()["items"]
    assert [h["metrics"]["accuracy"] for h in history] == [0.5, 0.75, 1.0]  # newest first
    assert client.get(f"/v1/models/{model}/metrics", params={"metric": "bogus"}).status_code == 422
    assert client.get(f"/v1/models/{model}/metrics", params={"since": "yesterday"}).status_code == 422


BAD_DATA = [
    ((["[1, 0]", "[1]"]), "y_true has 2 values, y_pred 1"),
    ((["[]", "[]"]), "empty"),
    ((['{"a": 1}', "[1]"]), "not a JSON array"),
    ((["[1e400, 1]", "[1, 1]"]), "not valid JSON: Number out of range"),
    ((['[1, "NaN"]', "[1, 1]"]), "mixes label types"),
    ((['[1, "a"]', "[1, 1]"]), "mixes label types"),
    ((["[1, null]", "[1, 1]"]), "contains null"),
]


@pytest.mark.parametrize(("row", "message"), BAD_DATA)
def test_bad_data_fails_the_job_clearly_and_writes_nothing(
    client: httpx.Client, stack: dict[str, str], row: list[str], message: str
) -> None:
    model = uuid.uuid4()
    add_results(stack["DATABASE_URL"], model, (row[0], row[1]))
    job = run(client, stack, {"model_id": str(model)}, status="dead")
    assert job["status"] == "dead" and job["attempts"] == 1
    assert message in job["error"]["message"]
    assert history_rows(stack["DATABASE_URL"], model) == 0
    assert client.get(f"/results/{model}").status_code == 404


def test_an_unknown_model_or_an_impossible_metric_fails_clearly(client: httpx.Client, stack: dict[str, str]) -> None:
    job = run(client, stack, {"model_id": str(uuid.uuid4())}, status="dead")
    assert "no results for model" in job["error"]["message"]
    model = uuid.uuid4()
    add_results(stack["DATABASE_URL"], model, (["a", "b"], ["a", "a"]))
    assert (
        "need numeric" in run(client, stack, {"model_id": str(model), "metrics": ["mae"]}, "dead")["error"]["message"]
    )
    assert (
        "need y_score"
        in run(client, stack, {"model_id": str(model), "metrics": ["roc_auc"]}, "dead")["error"]["message"]
    )
    bad = client.post("/v1/commands", json={"type": "metrics.compute", "model_id": str(model), "metrics": ["speed"]})
    assert bad.status_code == 422 and bad.json()["detail"]["path"] == "$.metrics[0]"


def test_alerts_fire_once_per_crossing_retry_delivery_and_rearm_after_recovery(
    client: httpx.Client, stack: dict[str, str]
) -> None:
    receiver = WebhookReceiver(fail_first=2)
    model = uuid.uuid4()
    add_results(stack["DATABASE_URL"], model, ([1, 0, 1, 0], [0, 1, 1, 0]))  # accuracy 0.5
    name = f"quality-{model}"
    created = client.post(
        "/v1/schedules",
        json={
            "name": name,
            "cron": "* * * * * *",
            "command": {"type": "metrics.compute", "model_id": str(model)},
            "alert": {"metric": "accuracy", "below": 0.8, "webhook_url": receiver.url},
        },
    )
    assert created.status_code == 201, created.text
    assert "secret-token-xyz" not in created.text  # the webhook URL is a secret
    try:
        wait_for(lambda: len(receiver.posts) >= 3, 60, 0.2, "the alert to be delivered on its third attempt")
        time.sleep(3)  # more computations below the threshold: no alert storm
        assert len(receiver.posts) == 3
        assert receiver.posts[-1]["metric"] == "accuracy" and receiver.posts[-1]["value"] == 0.5
        assert "below the threshold 0.8" in receiver.posts[-1]["text"]
        with psycopg.connect(stack["DATABASE_URL"]) as conn:
            delivery = conn.execute(
                "SELECT status, attempts FROM alert_deliveries WHERE model_id = %s", (model,)
            ).fetchall()
        assert delivery == [("delivered", 3)]

        add_results(stack["DATABASE_URL"], model, ([1, 1], [1, 1]))  # recovers: accuracy 1.0
        wait_for(lambda: client.get(f"/v1/schedules/{name}").json()["alert_state"] == "ok", 30, 0.2, "recovery")
        add_results(stack["DATABASE_URL"], model, ([1, 1], [0, 0]))  # crosses again
        wait_for(lambda: len(receiver.posts) == 4, 30, 0.2, "a second alert after recovery")
        assert receiver.posts[-1]["value"] == 0.0
        jobs = client.get("/v1/jobs", params={"type": "metrics.alert.deliver", "limit": 500}).json()["items"]
        assert all("secret-token-xyz" not in json.dumps(j) for j in jobs)
    finally:
        client.delete(f"/v1/schedules/{name}")
        receiver.close()


def test_the_seed_script_loads_the_originals_test_data(stack: dict[str, str]) -> None:
    with psycopg.connect(stack["DATABASE_URL"]) as conn:
        conn.execute((ROOT / "sql" / "seed" / "metrics_results.sql").read_text())
        count = conn.execute(
            "SELECT count(*) FROM results WHERE model_id = '30dc8119-afe0-4dbd-9555-eb36fa408fd4'"
        ).fetchone()
    assert count is not None and count[0] >= 2
