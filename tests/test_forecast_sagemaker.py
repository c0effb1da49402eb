"""The sagemaker backend through the bus, against moto's AWS (S3, SageMaker, SageMaker runtime)
in server mode: the worker subprocess reaches it through SAGEMAKER_ENDPOINT_URL.

moto answers invoke_endpoint from a queue the test fills with DeepAR- and RCF-shaped bodies.
Every test ends by asserting that no model, endpoint config or endpoint is left.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import numpy as np
import psycopg
import pytest
from dramatiq.middleware import Shutdown

from bus.errors import Continue
from devservers import free_port
from tests.support import API_KEY, start_web, start_worker, wait_for, wait_status
from workers.actors import JobContext

moto_server = pytest.importorskip("moto.server")

REGION = "us-east-1"
BUCKET = "switchyard-forecast-test"
ROLE = "arn:aws:iam::123456789012:role/switchyard-sagemaker"
#: long enough that a cancel request made as the training starts is seen at the first poll
POLL_S = 4


@pytest.fixture(scope="module")
def aws() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", region_name=REGION, endpoint_url=url, **_keys()).create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def sm_stack(base_env: dict[str, str], aws: str) -> Iterator[dict[str, str]]:
    """web + forecast worker on a broker namespace of their own, configured for moto."""
    env = base_env | {
        "BROKER_NAMESPACE": "sm-" + uuid.uuid4().hex[:6],
        "SAGEMAKER_ENDPOINT_URL": aws,
        "SAGEMAKER_REGION": REGION,
        "SAGEMAKER_ROLE_ARN": ROLE,
        "SAGEMAKER_BUCKET": BUCKET,
        "SAGEMAKER_POLL_S": str(POLL_S),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "FORECAST_N_JOBS": "1",
    }
    web, url = start_web(env, free_port(), name="web-sagemaker")
    worker = start_worker(env, pool="forecast", name="worker-forecast-sagemaker", threads=2)
    yield {"url": url, **env}
    worker.stop()
    web.stop()


@pytest.fixture()
def api(sm_stack: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sm_stack["url"], headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10) as c:
        yield c


def sagemaker(aws: str) -> Any:
    return boto3.client("sagemaker", region_name=REGION, endpoint_url=aws, **_keys())


def queue_answers(aws: str, *bodies: Any) -> None:
    """What moto's invoke_endpoint answers next, in order."""
    results = [
        {
            "Body": json.dumps(b),
            "ContentType": "application/json",
            "InvokedProductionVariant": "main",
            "CustomAttributes": "",
        }
        for b in bodies
    ]
    response = httpx.post(
        f"{aws}/moto-api/static/sagemaker/endpoint-results",
        json={"account_id": "123456789012", "region": REGION, "results": results},
    )
    assert response.status_code == 201, response.text


def assert_nothing_left(aws: str) -> None:
    sm = sagemaker(aws)
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []


def deepar_answer(series: int, horizon: int, level: float) -> dict[str, Any]:
    mean = [level + i for i in range(horizon)]
    return {
        "predictions": [
            {
                "mean": mean,
                "quantiles": {"0.1": [m - 5 for m in mean], "0.5": mean, "0.9": [m + 5 for m in mean]},
            }
            for _ in range(series)
        ]
    }


def run_row(database_url: str, job_id: str) -> dict[str, Any] | None:
    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM sagemaker_runs WHERE job_id = %s", (job_id,)).fetchone()


def forecast_command(values: list[float], horizon: int = 4) -> dict[str, Any]:
    return {
        "type": "forecast.forecast",
        "backend": "sagemaker",
        "source": {
            "kind": "inline",
            "series": [{"series_id": "kpi", "start": "2023-01-01", "freq": "MS", "values": values}],
        },
        "prediction_length": horizon,
        "quantiles": [0.1, 0.5, 0.9],
        "deepar": {"epochs": 20, "num_samples": 50},
    }


def test_deepar_trains_on_a_real_holdout_predicts_stores_and_deletes_its_endpoint(
    api: httpx.Client, sm_stack: dict[str, str], aws: str
) -> None:
    values = [100.0 + i for i in range(24)]
    # first the backtest (the series without its last 4 points), then the forecast
    queue_answers(aws, deepar_answer(1, 4, 120.0), deepar_answer(1, 4, 124.0))
    job_id = api.post("/v1/commands", json=forecast_command(values)).json()["id"]
    row = wait_status(sm_stack["DATABASE_URL"], job_id, {"succeeded", "dead"}, timeout=120)
    assert row["status"] == "succeeded", row["error"]
    assert row["attempts"] >= 2, "the training poll came back as a later delivery, not a waiting thread"

    result = row["result"]
    assert result["backend"] == "sagemaker" and result["models"] == {"DeepAR": 1}
    (kpi,) = result["per_series"]
    # backtest: predicted 120..123 for the held-out 120..123
    assert kpi["mase"] == pytest.approx(0.0) and kpi["smape"] == pytest.approx(0.0)
    served = api.get(f"/v1/forecasts/{job_id}").json()["series"][0]["forecast"]
    assert [p["ts"] for p in served] == [
        "2025-01-01T00:00:00Z",
        "2025-02-01T00:00:00Z",
        "2025-03-01T00:00:00Z",
        "2025-04-01T00:00:00Z",
    ]
    assert [p["mean"] for p in served] == [124.0, 125.0, 126.0, 127.0]
    assert served[0]["quantiles"] == {"0.1": 119.0, "0.5": 124.0, "0.9": 129.0}

    run = run_row(sm_stack["DATABASE_URL"], job_id)
    assert run is not None and run["phase"] == "done"
    training = sagemaker(aws).describe_training_job(TrainingJobName=run["name"])
    hyper = training["HyperParameters"]
    assert hyper["time_freq"] == "M" and hyper["prediction_length"] == "4" and hyper["context_length"] == "4"
    assert (
        hyper["epochs"] == "20"
        and "522234722520.dkr.ecr.us-east-1" in training["AlgorithmSpecification"]["TrainingImage"]
    )
    assert {c["ChannelName"] for c in training["InputDataConfig"]} == {"train", "test"}
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws, **_keys())
    prefix = run["data_uri"].split("/", 3)[3]
    train = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}train/train.json")["Body"].read())
    test = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}test/test.json")["Body"].read())
    assert train == {"start": "2023-01-01 00:00:00", "target": values[:-4]}  # the last horizon is held out
    assert test == {"start": "2023-01-01 00:00:00", "target": values}
    assert_nothing_left(aws)


def test_a_bad_endpoint_answer_fails_the_job_and_still_deletes_everything(
    api: httpx.Client, sm_stack: dict[str, str], aws: str
) -> None:
    queue_answers(aws, {"unexpected": "shape"})
    job_id = api.post("/v1/commands", json=forecast_command([float(i % 5) for i in range(20)])).json()["id"]
    row = wait_status(sm_stack["DATABASE_URL"], job_id, {"succeeded", "dead"}, timeout=120)
    assert row["status"] == "dead"
    assert "expected {'predictions': [...]}" in row["error"]["message"]
    assert run_row(sm_stack["DATABASE_URL"], job_id)["phase"] == "failed"  # type: ignore[index]
    assert_nothing_left(aws)


def test_random_cut_forest_scores_points_flags_the_spike_and_deletes_its_endpoint(
    api: httpx.Client, sm_stack: dict[str, str], aws: str
) -> None:
    values = [10.0 + (i % 4) for i in range(40)]
    values[30] = 60.0
    scores = [1.0 + 0.01 * (i % 3) for i in range(40)]
    scores[30] = 9.0
    queue_answers(aws, {"scores": [{"score": s} for s in scores]})
    command = {
        "type": "forecast.anomalies",
        "backend": "sagemaker",
        "source": {
            "kind": "inline",
            "series": [{"series_id": "valve", "start": "2024-05-01", "freq": "D", "values": values}],
        },
        "rcf": {"feature_dim": 4, "num_trees": 50, "num_samples_per_tree": 32},
    }
    job_id = api.post("/v1/commands", json=command).json()["id"]
    row = wait_status(sm_stack["DATABASE_URL"], job_id, {"succeeded", "dead"}, timeout=120)
    assert row["status"] == "succeeded", row["error"]
    (valve,) = row["result"]["per_series"]
    assert valve["flagged"] == ["2024-05-31T00:00:00Z"] and valve["anomalies"] == 1
    assert valve["threshold"] == pytest.approx(np.mean(scores) + 3 * np.std(scores))

    run = run_row(sm_stack["DATABASE_URL"], job_id)
    training = sagemaker(aws).describe_training_job(TrainingJobName=run["name"])  # type: ignore[index]
    assert training["HyperParameters"] == {"feature_dim": "4", "num_trees": "50", "num_samples_per_tree": "32"}
    assert "382416733822.dkr.ecr.us-east-1" in training["AlgorithmSpecification"]["TrainingImage"]
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws, **_keys())
    prefix = run["data_uri"].split("/", 3)[3]  # type: ignore[index]
    lines = s3.get_object(Bucket=BUCKET, Key=f"{prefix}train/train.csv")["Body"].read().decode().splitlines()
    assert len(lines) == 40 and all(len(line.split(",")) == 4 for line in lines)  # one shingle per point
    assert_nothing_left(aws)


def test_a_cancelled_run_stops_and_ends_cancelled_with_nothing_left(
    api: httpx.Client, sm_stack: dict[str, str], aws: str
) -> None:
    job_id = api.post("/v1/commands", json=forecast_command([float(i) for i in range(20)])).json()["id"]
    wait_for(lambda: run_row(sm_stack["DATABASE_URL"], job_id), 60, 0.05, "the training job to start")
    response = api.post(f"/v1/forecasts/{job_id}/cancel")
    assert response.status_code == 202, response.text
    row = wait_status(sm_stack["DATABASE_URL"], job_id, {"succeeded", "dead", "cancelled"}, timeout=60)
    assert row["status"] == "cancelled" and "cancelled at the user's request" in row["error"]["message"]
    assert run_row(sm_stack["DATABASE_URL"], job_id)["phase"] == "cancelled"  # type: ignore[index]
    assert api.post(f"/v1/forecasts/{job_id}/cancel").status_code == 409
    assert_nothing_left(aws)


def test_the_jobs_own_cancel_of_a_running_run_cleans_up_too(
    api: httpx.Client, sm_stack: dict[str, str], aws: str
) -> None:
    """POST /v1/jobs/{id}/cancel: the run sees the request at a progress report (JobCancelled)
    and cleans up as its own cancel does: nothing is left running."""
    job_id = api.post("/v1/commands", json=forecast_command([float(i) for i in range(20)])).json()["id"]
    wait_for(lambda: run_row(sm_stack["DATABASE_URL"], job_id), 60, 0.05, "the training job to start")
    response = api.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 202 and response.json()["cancel_requested_at"], response.text
    row = wait_status(sm_stack["DATABASE_URL"], job_id, {"succeeded", "dead", "cancelled"}, timeout=60)
    assert row["status"] == "cancelled", row["error"]
    assert run_row(sm_stack["DATABASE_URL"], job_id)["phase"] == "cancelled"  # type: ignore[index]
    assert_nothing_left(aws)


def test_an_unconfigured_backend_is_a_clear_permanent_error(base_env: dict[str, str]) -> None:
    """Without a role and a bucket the job cannot start: it says which settings are missing."""
    from bus import settings
    from bus.errors import PermanentError
    from workers.forecast import sagemaker as backend

    settings.get.cache_clear()
    try:
        with pytest.raises(PermanentError, match="set SAGEMAKER_ROLE_ARN and SAGEMAKER_BUCKET"):
            backend._check_settings()
    finally:
        settings.get.cache_clear()


class _StopsWhen(JobContext):
    """A job whose worker shuts down at the given step: Dramatiq raises ``Shutdown`` in the
    handler's thread (notify_shutdown) wherever it is; here, while the endpoint is up."""

    def __init__(self, job_id: str, at: str) -> None:
        super().__init__(job_id, 1, None)
        self.at = at

    def progress(self, percent: float, message: str | None = None) -> None:
        if message and self.at in message:
            raise Shutdown("worker shutting down")


def test_a_worker_shutdown_while_the_endpoint_is_up_deletes_it_and_the_redelivery_finishes(
    base_env: dict[str, str], aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bus import settings
    from bus.jobstore import shared
    from contracts import convert
    from workers.forecast import sagemaker as backend

    for name in (
        "SAGEMAKER_ENDPOINT_URL",
        "SAGEMAKER_ROLE_ARN",
        "SAGEMAKER_BUCKET",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.setenv(
            name,
            {"SAGEMAKER_ENDPOINT_URL": aws, "SAGEMAKER_ROLE_ARN": ROLE, "SAGEMAKER_BUCKET": BUCKET}.get(
                name, "testing"
            ),
        )
    settings.get.cache_clear()
    try:
        body = forecast_command([50.0 + (i % 6) for i in range(30)], horizon=3)
        command = convert(body)
        job_id = str(uuid.uuid4())
        shared().insert(job_id=job_id, type=body["type"], queue="forecast", command=body, options={})

        with pytest.raises(Continue):  # training started; the job would come back after the poll delay
            backend._step("deepar", command, _StopsWhen(job_id, "never"))
        with pytest.raises(Shutdown):
            backend._step("deepar", command, _StopsWhen(job_id, "in service"))
        assert_nothing_left(aws)
        assert run_row(base_env["DATABASE_URL"], job_id)["phase"] == "serving"  # type: ignore[index]

        # the redelivery deploys again from the same training job, predicts, and cleans up
        queue_answers(aws, deepar_answer(1, 3, 52.0), deepar_answer(1, 3, 53.0))
        result = backend._step("deepar", command, _StopsWhen(job_id, "never"))
        assert result is not None and result["series"] == 1
        assert run_row(base_env["DATABASE_URL"], job_id)["phase"] == "done"  # type: ignore[index]
        assert_nothing_left(aws)
    finally:
        settings.get.cache_clear()
