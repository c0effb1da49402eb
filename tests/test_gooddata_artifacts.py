"""The artifact store: a local directory, and S3 (moto at AWS's network edge) through the
whole bus: a gooddata export lands in the bucket and GET /v1/jobs/{id}/artifact streams it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from bus.artifacts import LocalStore, S3Store, open_store, safe_file_name
from devservers import free_port
from tests.gooddata_replay import ReplayServer, recording
from tests.gooddata_support import gooddata_env, run, start_gooddata_worker, succeeded
from tests.support import API_KEY, start_web

BUCKET = "switchyard-artifacts"
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def test_local_store_writes_reads_and_stays_inside_its_directory(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "artifacts")
    store.put("jobs/j1/out.csv", b"a,b\n1,2\n", "text/csv")
    assert store.exists("jobs/j1/out.csv") and not store.exists("jobs/j1/other.csv")
    assert b"".join(store.chunks("jobs/j1/out.csv")) == b"a,b\n1,2\n"
    assert [p.name for p in (tmp_path / "artifacts" / "jobs" / "j1").iterdir()] == ["out.csv"]  # no temp left
    with pytest.raises(ValueError, match="escapes"):
        store.put("../outside.txt", b"x", "text/plain")


def test_store_urls_and_file_names() -> None:
    assert isinstance(open_store("s3://bucket/some/prefix"), S3Store)
    assert open_store("s3://bucket/some/prefix/").url == "s3://bucket/some/prefix"
    assert isinstance(open_store("file:///tmp/x"), LocalStore)
    assert safe_file_name("../../etc/passwd") == "_.._etc_passwd"
    assert safe_file_name("Customers Trend") == "Customers Trend"
    assert safe_file_name("...") == "artifact"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=url, **_aws_kwargs()).create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


def _aws_kwargs() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="module")
def s3_stack(base_env: dict[str, str], replay: ReplayServer, moto_url: str) -> Iterator[str]:
    """web + gooddata worker storing artifacts in the moto bucket."""
    env = gooddata_env(base_env, replay, ARTIFACTS_URL=f"s3://{BUCKET}/exports", AWS_ENDPOINT_URL=moto_url, **AWS)
    web, url = start_web(env, free_port(), name="web-s3")
    worker = start_gooddata_worker(env, name="worker-gooddata-s3")
    yield url
    worker.stop()
    web.stop()


def test_an_export_goes_to_s3_and_streams_back(
    s3_stack: str, replay: ReplayServer, moto_url: str, database_url: str
) -> None:
    scenario = "export/test_export_csv_by_visualization_id.yaml"
    replay.load(scenario)
    command = {"type": "gooddata.export.visualization", "workspace_id": "demo", "visualization_id": "customers_trend"}
    with httpx.Client(base_url=s3_stack, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as client:
        row = run(client, database_url, command)
        artifact = succeeded(row)["artifact"]
        download = client.get(artifact["href"])
    expected = recording(scenario)[-1]["response"]["body"]["string"].encode()
    s3 = boto3.client("s3", endpoint_url=moto_url, **_aws_kwargs())
    stored = s3.get_object(Bucket=BUCKET, Key=f"exports/jobs/{row['id']}/Customers Trend.csv")
    assert stored["ContentType"] == "text/csv" and stored["Body"].read() == expected
    assert download.status_code == 200 and download.content == expected
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-length"] == str(len(expected)) == str(artifact["size_bytes"])

    s3.delete_object(Bucket=BUCKET, Key=f"exports/jobs/{row['id']}/Customers Trend.csv")
    with httpx.Client(base_url=s3_stack, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as client:
        gone = client.get(artifact["href"])
    assert gone.status_code == 404 and "no longer in the store" in gone.json()["detail"]["message"]
