"""The sagemaker backend with boto3: DeepAR forecasts, Random Cut Forest anomaly scores.

A job is a small state machine kept in ``sagemaker_runs`` (one name for the training
job, model, endpoint config and endpoint, derived from the job id and run number):

1. **start** — load and validate the series, write them to S3 (DeepAR: JSON lines
   ``{start, target}``, a ``train`` channel without the last horizon and a ``test``
   channel with it, so the test channel really is held out; RCF: CSV), create the
   training job, and ``Continue``: the message comes back after SAGEMAKER_POLL_S and no
   thread waits for the training.
2. **training** — describe the training job: still running -> progress and
   ``Continue``; failed or stopped -> the job fails; completed -> serve.
3. **serving** — in one delivery: model, endpoint config, endpoint, wait until in
   service, invoke, store the results, and in a ``finally`` delete the endpoint, its
   config and the model. The ``finally`` runs on success, on any error, on a time limit
   and on worker shutdown (the actors take ``notify_shutdown``), so an endpoint never
   outlives the delivery that made it; after a crash (SIGKILL) the redelivery finds the
   run still ``serving`` and reuses, then deletes, the same names.

A cancel request (``POST /v1/forecasts/{job_id}/cancel``, or the job's own
``POST /v1/jobs/{job_id}/cancel``, seen at a progress report) is handled by the next step: it
stops the training job, deletes what exists and ends the job ``cancelled``.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import numpy as np
import pandas as pd
from botocore.config import Config
from botocore.exceptions import ClientError

from bus import settings
from bus.errors import Continue, JobCancelled, PermanentError, permanent_status
from bus.jobstore import shared
from contracts import JobError, JobStatus, forecast
from workers.actors import JobContext
from workers.forecast import frames, results, runs, sources, store
from workers.forecast.accuracy import mase, smape
from workers.forecast.frames import SeriesData

log = logging.getLogger(__name__)

#: AWS's registries of the built-in algorithms' images (the SageMaker SDK's image_uri_config)
_FIRST_PARTY = {
    "af-south-1": "455444449433", "ap-east-1": "286214385809", "ap-south-1": "991648021394",
    "ap-southeast-1": "475088953585", "ca-central-1": "469771592824", "cn-north-1": "390948362332",
    "cn-northwest-1": "387376663083", "eu-north-1": "669576153137", "eu-west-2": "644912444149",
    "eu-west-3": "749696950732", "eu-south-1": "257386234256", "me-south-1": "249704162688",
    "sa-east-1": "855470959533", "us-gov-west-1": "226302683700", "us-iso-east-1": "490574956308",
    "us-west-1": "632365934929",
}  # fmt: skip
REGISTRIES = {
    "deepar": {
        **_FIRST_PARTY, "ap-northeast-1": "633353088612", "ap-northeast-2": "204372634319",
        "ap-northeast-3": "364406365360", "ap-southeast-2": "514117268639", "eu-central-1": "495149712605",
        "eu-west-1": "224300973850", "us-east-1": "522234722520", "us-east-2": "566113047672",
        "us-west-2": "156387875391",
    },
    "randomcutforest": {
        **_FIRST_PARTY, "ap-northeast-1": "351501993468", "ap-northeast-2": "835164637446",
        "ap-northeast-3": "867004704886", "ap-southeast-2": "712309505854", "ap-southeast-3": "951798379941",
        "eu-central-1": "664544806723", "eu-west-1": "438346466558", "us-east-1": "382416733822",
        "us-east-2": "404615174143", "us-west-2": "174872318107",
    },
}  # fmt: skip
_REPOSITORY = {"deepar": "forecasting-deepar", "randomcutforest": "randomcutforest"}
#: our frequencies as DeepAR's time_freq (it knows min, H, D, W, M and their multiples)
TIME_FREQ = {
    "min": "min", "5min": "5min", "15min": "15min", "30min": "30min", "h": "H", "D": "D", "W": "W",
    "MS": "M", "M": "M", "QS": "3M", "Q": "3M", "YS": "12M", "Y": "12M",
}  # fmt: skip
#: series per invocation (keeps a request and its answer well under SageMaker's 6 MB)
DEEPAR_BATCH = 100
RCF_BATCH_RECORDS = 20_000


class Cancelled(Exception):
    pass


def image(algorithm: str, region: str) -> str:
    account = REGISTRIES[algorithm].get(region)
    if account is None:
        raise PermanentError(f"SAGEMAKER_REGION: no built-in {algorithm} image is known for region {region!r}")
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{_REPOSITORY[algorithm]}:1"


def _client(service: str) -> Any:
    s = settings.get()
    return _made_client(service, s.sagemaker_region, s.sagemaker_endpoint_url or None)


@functools.cache
def _made_client(service: str, region: str, endpoint_url: str | None) -> Any:
    # one client per service and place, made once: making one loads the service's model, and a
    # job polls every few seconds (boto3 clients are thread-safe; the session is used only here)
    return boto3.session.Session(region_name=region).client(
        service,
        endpoint_url=endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=70),
    )


def _check_settings() -> settings.Settings:
    s = settings.get()
    missing = [
        name
        for name, value in (("SAGEMAKER_ROLE_ARN", s.sagemaker_role_arn), ("SAGEMAKER_BUCKET", s.sagemaker_bucket))
        if not value
    ]
    if missing:
        raise PermanentError(f"backend 'sagemaker' is not configured: set {' and '.join(missing)}")
    return s


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _gone(err: ClientError) -> bool:
    message = str(err.response.get("Error", {}).get("Message", ""))
    return _code(err) in ("ResourceNotFound", "ValidationException") and (
        "not find" in message or "not exist" in message or "not found" in message.lower()
    )


def _exists(err: ClientError) -> bool:
    message = str(err.response.get("Error", {}).get("Message", "")).lower()
    return _code(err) in ("ResourceInUse", "ValidationException") and (
        "already exist" in message or "in use" in message
    )


def _remote(doing: str, err: ClientError) -> Exception:
    """A 4xx that is not throttling will not get better: fail the job. Others are retried."""
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
    message = err.response.get("Error", {}).get("Message", str(err))
    if permanent_status(status) and _code(err) not in ("ThrottlingException", "Throttling", "LimitExceededException"):
        return PermanentError(f"SageMaker refused {doing}: {_code(err)}: {message}")
    return err


# --- entry points ----------------------------------------------------------------------------


def run_forecast(command: forecast.Forecast, job: JobContext) -> dict[str, Any] | None:
    return _step("deepar", command, job)


def run_anomalies(command: forecast.Anomalies, job: JobContext) -> dict[str, Any] | None:
    return _step("randomcutforest", command, job)


def _step(algorithm: str, command: Any, job: JobContext) -> dict[str, Any] | None:
    s = _check_settings()
    run = runs.get(job.id)
    try:
        if run is None or not run.live:
            run = _start(algorithm, command, job, previous=run)
            job.progress(5, f"training job {run.name} created")
            raise Continue(int(s.sagemaker_poll_s * 1000), "training")
        if run.cancel_requested_at is not None:  # the row just read says so: no second read
            raise Cancelled()
        if run.phase == "training":
            if not _trained(run, job):
                raise Continue(int(s.sagemaker_poll_s * 1000), "training")
            run = runs.set_phase(job.id, "serving") or run
        return _serve(run, command, job)
    except (Cancelled, JobCancelled):
        # JobCancelled: the job's own cancel (POST /v1/jobs/{id}/cancel), seen at a progress report
        if run is None or not run.live:
            raise  # stopped before its training job existed: nothing to clean up
        _stop_training(run)
        _delete_serving(run)
        runs.set_phase(job.id, "cancelled")
        message = "cancelled at the user's request; the training job was stopped and no endpoint is left"
        shared().finish(
            job.id, JobStatus.CANCELLED, attempt=job.attempt, error=JobError(type="Cancelled", message=message)
        )
        return None  # the job is over: the lifecycle's own finish finds that attempt no longer running


def _check_cancel(job_id: str) -> None:
    run = runs.get(job_id)
    if run is not None and run.cancel_requested_at is not None:
        raise Cancelled()


# --- 1. start: data to S3, training job --------------------------------------------------------


def _start(algorithm: str, command: Any, job: JobContext, previous: runs.Run | None) -> runs.Run:
    s = settings.get()
    job.progress(0, "reading the series")
    series = sources.load(command.source)
    if algorithm == "deepar":
        h = command.prediction_length
        frames.require_length(
            series, forecast.min_length(h, "sagemaker"), f"a horizon of {h} (the last {h} values are held out)"
        )
        spec = {"horizon": h, "context_length": command.context_length or h, "quantiles": sorted(command.quantiles)}
    else:
        frames.require_length(series, forecast.MIN_ANOMALY_POINTS, "anomaly scoring")
        for item in series:
            if np.isnan(item.values).any():
                raise PermanentError(
                    f"series {item.series_id!r} has missing values: Random Cut Forest needs every point"
                )
        spec = {"feature_dim": command.rcf.feature_dim}
    number = (previous.run + 1) if previous else 1
    tag = uuid.UUID(job.id).hex if _is_uuid(job.id) else _slug(job.id)
    name = f"sy-{'deepar' if algorithm == 'deepar' else 'rcf'}-{tag}-{number}"
    data_uri = f"s3://{s.sagemaker_bucket}/{s.sagemaker_prefix.strip('/')}/{name}/"
    spec |= {"freq": series[0].freq, "series": [[x.series_id, x.start.isoformat()] for x in series]}
    # the row is written once the training job exists: a delivery that dies before that
    # leaves no run, and its redelivery derives the same name and finds the same job
    s3 = _client("s3")
    bucket, prefix = data_uri[5:].split("/", 1)
    if algorithm == "deepar":
        h = spec["horizon"]
        # train: all but the last horizon; test: the whole series (DeepAR scores its last horizon)
        _put(s3, bucket, f"{prefix}train/train.json", _jsonlines(series, cut=h))
        _put(s3, bucket, f"{prefix}test/test.json", _jsonlines(series, cut=0))
        channels = {"train": "application/jsonlines", "test": "application/jsonlines"}
        hyper = {
            "time_freq": TIME_FREQ[series[0].freq],
            "prediction_length": h,
            "context_length": spec["context_length"],
            "epochs": command.deepar.epochs,
            "mini_batch_size": command.deepar.mini_batch_size,
            "learning_rate": command.deepar.learning_rate,
        }
        if command.deepar.early_stopping_patience is not None:
            hyper["early_stopping_patience"] = command.deepar.early_stopping_patience
    else:
        _put(s3, bucket, f"{prefix}train/train.csv", _csv(_records(series, spec["feature_dim"])))
        # outside the channel: the raw values the scores are matched back to
        _put(s3, bucket, f"{prefix}values.json", json.dumps([x.values.tolist() for x in series]).encode())
        channels = {"train": "text/csv;label_size=0"}
        hyper = {
            "feature_dim": spec["feature_dim"],
            "num_trees": command.rcf.num_trees,
            "num_samples_per_tree": command.rcf.num_samples_per_tree,
        }
    sm = _client("sagemaker")
    try:
        sm.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={"TrainingImage": image(algorithm, s.sagemaker_region), "TrainingInputMode": "File"},
            RoleArn=s.sagemaker_role_arn,
            InputDataConfig=[
                {
                    "ChannelName": channel,
                    "ContentType": content_type,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": f"{data_uri}{channel}/",
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
                for channel, content_type in channels.items()
            ],
            OutputDataConfig={"S3OutputPath": f"{data_uri}output/"},
            ResourceConfig={"InstanceType": s.sagemaker_training_instance, "InstanceCount": 1, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": s.sagemaker_max_runtime_s},
            HyperParameters={k: str(v) for k, v in hyper.items()},
            Tags=_tags(job.id),
        )
    except ClientError as err:
        if not _exists(err):
            raise _remote(f"training job {name}", err) from None
    run = runs.start(job.id, algorithm, number, name, data_uri, spec)
    if run is None:  # another delivery of the job got there first: carry on from its state
        run = runs.get(job.id)
        assert run is not None
    return run


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)[:40].strip("-") or "job"


def _tags(job_id: str) -> list[dict[str, str]]:
    return [{"Key": "switchyard:job", "Value": job_id[:256]}]


def _put(s3: Any, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def _start_text(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S")


def _target(values: np.ndarray) -> list[float | str]:
    return [float(v) if math.isfinite(v) else "NaN" for v in values]


def _instance(series: SeriesData, cut: int) -> dict[str, Any]:
    return {"start": _start_text(series.start), "target": _target(series.values[: len(series) - cut])}


def _jsonlines(series: list[SeriesData], cut: int) -> bytes:
    return "".join(json.dumps(_instance(x, cut)) + "\n" for x in series).encode()


def _records(series: list[SeriesData], dim: int) -> Iterator[list[float]]:
    """Each point as a record: its standardized value and the dim - 1 before it (a shingle).
    Standardizing per series lets one forest score series of different scales."""
    for item in series:
        std = float(np.std(item.values)) or 1.0
        z = (item.values - float(np.mean(item.values))) / std
        padded = np.concatenate([np.full(dim - 1, z[0]), z])
        for i in range(len(z)):
            yield [round(float(v), 6) for v in padded[i : i + dim]]


def _csv(records: Iterator[list[float]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(records)
    return out.getvalue().encode()


# --- 2. training -----------------------------------------------------------------------------


def _trained(run: runs.Run, job: JobContext) -> bool:
    try:
        described = _client("sagemaker").describe_training_job(TrainingJobName=run.name)
    except ClientError as err:
        raise _remote(f"describing training job {run.name}", err) from None
    status = described["TrainingJobStatus"]
    if status == "Completed":
        return True
    if status in ("Failed", "Stopped"):
        runs.set_phase(job.id, "failed")
        reason = described.get("FailureReason") or "no reason given"
        raise PermanentError(f"SageMaker training job {run.name} {status.lower()}: {reason}")
    job.progress(10, f"training job {run.name}: {described.get('SecondaryStatus', status)}")
    return False


def _stop_training(run: runs.Run) -> None:
    sm = _client("sagemaker")
    try:
        if sm.describe_training_job(TrainingJobName=run.name)["TrainingJobStatus"] == "InProgress":
            sm.stop_training_job(TrainingJobName=run.name)
    except ClientError as err:
        if not _gone(err):
            log.warning("could not stop training job %s: %s", run.name, _code(err))


# --- 3. serving: endpoint up, predictions, endpoint down ------------------------------------------


def _serve(run: runs.Run, command: Any, job: JobContext) -> dict[str, Any]:
    try:
        _deploy(run, job)
        _check_cancel(job.id)
        job.progress(60, f"endpoint {run.name} in service: predicting")
        series = _series_back(run)
        result = (
            _forecast(run, command, job, series) if run.algorithm == "deepar" else _anomalies(run, command, job, series)
        )
    except PermanentError:
        runs.set_phase(job.id, "failed")
        raise
    finally:
        # every outcome: success, errors, a time limit, worker shutdown (Dramatiq's Shutdown)
        _delete_serving(run)
    runs.set_phase(job.id, "done")
    return result


def _deploy(run: runs.Run, job: JobContext) -> None:
    s = settings.get()
    sm = _client("sagemaker")
    try:
        artifacts = sm.describe_training_job(TrainingJobName=run.name)["ModelArtifacts"]["S3ModelArtifacts"]
        steps: list[tuple[str, Callable[[], Any]]] = [
            (
                f"model {run.name}",
                lambda: sm.create_model(
                    ModelName=run.name,
                    PrimaryContainer={"Image": image(run.algorithm, s.sagemaker_region), "ModelDataUrl": artifacts},
                    ExecutionRoleArn=s.sagemaker_role_arn,
                    Tags=_tags(job.id),
                ),
            ),
            (
                f"endpoint config {run.name}",
                lambda: sm.create_endpoint_config(
                    EndpointConfigName=run.name,
                    ProductionVariants=[
                        {
                            "VariantName": "main",
                            "ModelName": run.name,
                            "InitialInstanceCount": 1,
                            "InstanceType": s.sagemaker_inference_instance,
                        }
                    ],
                    Tags=_tags(job.id),
                ),
            ),
            (
                f"endpoint {run.name}",
                lambda: sm.create_endpoint(EndpointName=run.name, EndpointConfigName=run.name, Tags=_tags(job.id)),
            ),
        ]
        for what, create in steps:
            try:
                create()
            except ClientError as err:
                if not _exists(err):  # a redelivery after a crash finds its own resources: reuse them
                    raise _remote(what, err) from None
        job.progress(30, f"endpoint {run.name} starting")
        deadline = time.monotonic() + s.sagemaker_endpoint_timeout_s
        while True:
            described = sm.describe_endpoint(EndpointName=run.name)
            status = described["EndpointStatus"]
            if status == "InService":
                return
            if status in ("Failed", "OutOfService", "Deleting"):
                raise PermanentError(
                    f"endpoint {run.name} {status}: {described.get('FailureReason', 'no reason given')}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"endpoint {run.name} not in service after {s.sagemaker_endpoint_timeout_s:g} s")
            _check_cancel(job.id)
            for _ in range(10):  # short sleeps: a shutdown or time limit interrupts between them
                time.sleep(1)
    except ClientError as err:
        raise _remote(f"deploying {run.name}", err) from None


def _delete_serving(run: runs.Run) -> None:
    """Endpoint, endpoint config, model: each deleted, a missing one is fine."""
    sm = _client("sagemaker")
    failures = []
    for what, delete in (
        ("endpoint", lambda: sm.delete_endpoint(EndpointName=run.name)),
        ("endpoint config", lambda: sm.delete_endpoint_config(EndpointConfigName=run.name)),
        ("model", lambda: sm.delete_model(ModelName=run.name)),
    ):
        try:
            delete()
        except ClientError as err:
            if not _gone(err):
                failures.append(f"{what}: {_code(err)}")
    if failures:
        log.error("could not delete SageMaker resources of %s: %s", run.name, ", ".join(failures))
        raise RuntimeError(f"could not delete SageMaker resources of {run.name} ({', '.join(failures)}); retrying")


def _series_back(run: runs.Run) -> list[SeriesData]:
    """The series as written at the start (the source may have changed since): DeepAR's test
    channel, or RCF's copy of the raw values."""
    s3 = _client("s3")
    bucket, prefix = run.data_uri[5:].split("/", 1)
    ids = [sid for sid, _ in run.spec["series"]]
    starts = [pd.Timestamp(start) for _, start in run.spec["series"]]
    if run.algorithm == "deepar":
        lines = s3.get_object(Bucket=bucket, Key=f"{prefix}test/test.json")["Body"].read().decode().splitlines()
        values = [[math.nan if v == "NaN" else v for v in json.loads(line)["target"]] for line in lines]
    else:
        values = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}values.json")["Body"].read())
    return [
        SeriesData(sid, run.spec["freq"], start, np.asarray(v, dtype=np.float64))
        for sid, start, v in zip(ids, starts, values, strict=True)
    ]


def _invoke(run: runs.Run, body: bytes, content_type: str) -> Any:
    try:
        answer = _client("sagemaker-runtime").invoke_endpoint(
            EndpointName=run.name, ContentType=content_type, Accept="application/json", Body=body
        )
    except ClientError as err:
        raise _remote(f"invoking endpoint {run.name}", err) from None
    raw = answer["Body"].read()
    try:
        return json.loads(raw)
    except ValueError:
        raise PermanentError(f"endpoint {run.name} answered something that is not JSON: {raw[:200]!r}") from None


def _predict(
    run: runs.Run, series: list[SeriesData], cut: int, quantiles: list[float], samples: int
) -> list[dict[str, Any]]:
    """DeepAR's predictions for the series (without their last ``cut`` points), in order."""
    out: list[dict[str, Any]] = []
    for begin in range(0, len(series), DEEPAR_BATCH):
        batch = series[begin : begin + DEEPAR_BATCH]
        request = {
            "instances": [_instance(x, cut) for x in batch],
            "configuration": {
                "num_samples": samples,
                "output_types": ["mean", "quantiles"],
                "quantiles": [results.key(q) for q in quantiles],
            },
        }
        answer = _invoke(run, json.dumps(request).encode(), "application/json")
        predictions = answer.get("predictions") if isinstance(answer, dict) else None
        if not isinstance(predictions, list) or len(predictions) != len(batch):
            raise PermanentError(
                f"endpoint {run.name}: expected {{'predictions': [...]}} with {len(batch)} items,"
                f" got {str(answer)[:200]}"
            )
        out.extend(predictions)
    return out


def _parsed(
    prediction: Any, horizon: int, quantiles: list[float], where: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    try:
        by_key = {results.key(float(k)): np.asarray(v, dtype=float) for k, v in prediction["quantiles"].items()}
        wanted = {results.key(q): by_key[results.key(q)] for q in quantiles}
        mean = np.asarray(prediction["mean"], dtype=float) if "mean" in prediction else wanted.get("0.5")
        if mean is None or len(mean) != horizon or any(len(v) != horizon for v in wanted.values()):
            raise ValueError("length")
    except (KeyError, TypeError, ValueError, AttributeError):
        raise PermanentError(
            f"{where}: a DeepAR prediction needs 'mean' and 'quantiles' {[results.key(q) for q in quantiles]}"
            f" of {horizon} values each, got {str(prediction)[:200]}"
        ) from None
    return mean, wanted


def _forecast(run: runs.Run, command: forecast.Forecast, job: JobContext, series: list[SeriesData]) -> dict[str, Any]:
    h, quantiles = run.spec["horizon"], run.spec["quantiles"]
    samples = command.deepar.num_samples
    # backtest: the model never saw the last horizon (trained on the train channel)
    backtest = _predict(run, series, h, quantiles, samples)
    job.progress(75, "backtest done: forecasting")
    ahead = _predict(run, series, 0, quantiles, samples)
    rows, points = [], []
    for item, past, future in zip(series, backtest, ahead, strict=True):
        past_mean, _ = _parsed(past, h, quantiles, f"backtest of {item.series_id!r}")
        mean, bands = _parsed(future, h, quantiles, f"forecast of {item.series_id!r}")
        history, actual = item.values[:-h], item.values[-h:]
        known = np.isfinite(actual)
        rows.append(
            store.SeriesRow(
                item.series_id, "forecast", "sagemaker", "DeepAR", len(item),
                mase=mase(history[np.isfinite(history)], actual[known], past_mean[known], frames.SEASON[item.freq]),
                smape=smape(actual[known], past_mean[known]),
            )
        )  # fmt: skip
        for i, ts in enumerate(item.future(h)):
            points.append(
                (item.series_id, ts.to_pydatetime(), float(mean[i]), {k: float(v[i]) for k, v in bands.items()})
            )
    store.save(job.id, rows, forecasts=points)
    return results.forecast_result(job.id, "sagemaker", h, quantiles, rows)


def _anomalies(run: runs.Run, command: forecast.Anomalies, job: JobContext, series: list[SeriesData]) -> dict[str, Any]:
    dim = run.spec["feature_dim"]
    records = list(_records(series, dim))
    scores: list[float] = []
    for begin in range(0, len(records), RCF_BATCH_RECORDS):
        batch = records[begin : begin + RCF_BATCH_RECORDS]
        answer = _invoke(run, _csv(iter(batch)), "text/csv")
        try:
            got = [float(item["score"]) for item in answer["scores"]]
        except (KeyError, TypeError, ValueError):
            raise PermanentError(
                f"endpoint {run.name}: expected {{'scores': [{{'score': x}}, ...]}}, got {str(answer)[:200]}"
            ) from None
        if len(got) != len(batch):
            raise PermanentError(f"endpoint {run.name}: {len(batch)} records sent, {len(got)} scores received")
        scores.extend(got)
    rows, points, flagged, at = [], [], {}, 0
    for item in series:
        row, series_points, series_flags = results.anomaly_rows(
            item, np.asarray(scores[at : at + len(item)]), command.threshold_sigma, "sagemaker", "RandomCutForest"
        )
        at += len(item)
        rows.append(row)
        points.extend(series_points)
        flagged[item.series_id] = series_flags
    store.save(job.id, rows, anomalies=points)
    return results.anomalies_result(job.id, "sagemaker", command.threshold_sigma, rows, flagged)
