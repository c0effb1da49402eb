"""Processes and dependencies dying: nothing accepted is lost, nothing runs to success twice."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bus.migrate import migrate
from contracts import publish, system
from contracts.publish import broker_for
from devservers import EmbeddedPostgres, EmbeddedRedis, free_port
from tests.support import (
    API_KEY,
    ROOT,
    auth,
    job_row,
    start_ticker,
    start_web,
    start_worker,
    stop_all,
    wait_for,
    wait_status,
)

#: seconds, not minutes: Dramatiq's defaults (60 s heartbeat, maintenance on 0.1 % of calls) take
#: minutes; ours take the 8 s heartbeat plus one ticker pass (about 10 s, printed with -s). The bound
#: is generous so a loaded machine does not fail the test; the figure itself is reported, not asserted.
REDELIVERY_BOUND_S = 30


def _killed_mid_job_runs_again(env: dict[str, str], broker_url: str, name: str) -> None:
    env = {**env, "SWEEP_INTERVAL_S": "2"}  # the default interval, not the test stack's faster one
    first = start_worker(env, name=f"{name}-a", threads=2)
    ticker = start_ticker(env, name=f"ticker-{name}")
    second = None
    try:
        job_id = publish(
            system.Sleep(seconds=4, steps=8), broker=broker_for(broker_url, namespace=env["BROKER_NAMESPACE"])
        )
        wait_for(
            lambda: (row := job_row(env["DATABASE_URL"], job_id)) and (row["progress"] or {}).get("percent", 0) > 0,
            30,
            0.05,
            "the job to be running",
        )
        first.kill(signal.SIGKILL)
        killed_at = time.monotonic()
        second = start_worker(env, name=f"{name}-b", threads=2)
        wait_for(
            lambda: (row := job_row(env["DATABASE_URL"], job_id)) and row["attempts"] == 2,
            60,
            0.1,
            "the message to be delivered again",
        )
        redelivered_after = time.monotonic() - killed_at
        print(f"{name}: redelivered {redelivered_after:.1f} s after SIGKILL")
        assert redelivered_after < REDELIVERY_BOUND_S, f"redelivered after {redelivered_after:.1f} s"
        row = wait_status(env["DATABASE_URL"], job_id, {"succeeded"}, 30)
        assert row["result"] == {"slept_s": 4.0}
        time.sleep(2)  # no third delivery, no second success
        row = job_row(env["DATABASE_URL"], job_id)
        assert row is not None and row["attempts"] == 2 and row["status"] == "succeeded"
    finally:
        first.stop()
        ticker.stop()
        if second is not None:
            second.stop()


def test_a_worker_killed_mid_job_on_redis_has_its_message_run_again(base_env: dict[str, str]) -> None:
    env = {**base_env, "BROKER_NAMESPACE": "sykill-" + uuid.uuid4().hex[:6]}
    _killed_mid_job_runs_again(env, env["REDIS_URL"], "worker-kill-redis")


def test_a_worker_killed_mid_job_on_rabbitmq_has_its_message_run_again(
    base_env: dict[str, str], rabbitmq_url: str
) -> None:
    _killed_mid_job_runs_again({**base_env, "BROKER_URL": rabbitmq_url}, rabbitmq_url, "worker-kill-rabbitmq")


def test_a_cancelled_job_is_skipped_by_the_worker(base_env: dict[str, str]) -> None:
    # no worker listens on this namespace yet, so the job stays queued
    env = {**base_env, "BROKER_NAMESPACE": "sycancel-" + uuid.uuid4().hex[:6]}
    web, url = start_web(env, free_port(), name="web-cancel")
    worker = None
    try:
        with httpx.Client(base_url=url, headers=auth(), timeout=10) as client:
            job_id = client.post("/v1/commands", json={"type": "system.noop", "echo": "never"}).json()["id"]
            cancelled = client.post(f"/v1/jobs/{job_id}/cancel")
            assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
            assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 409
            worker = start_worker(env, name="worker-cancel")
            wait_for(lambda: "its job is already over" in worker.output(), 30, 0.2, "the worker to skip the message")
            job = client.get(f"/v1/jobs/{job_id}").json()
            assert job["status"] == "cancelled" and job["attempts"] == 0 and job["result"] is None
    finally:
        web.stop()
        if worker is not None:
            worker.stop()


def test_the_web_process_refuses_to_start_without_api_keys(base_env: dict[str, str]) -> None:
    env = {**base_env, "API_KEYS": ""}
    run = subprocess.run(
        [sys.executable, "-c", "from ingress.app import create_app; create_app()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "refusing to start: API_KEYS is empty" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.fixture()
def own_services(
    server_tmp_path: Path, base_env: dict[str, str]
) -> Iterator[tuple[dict[str, str], EmbeddedPostgres, EmbeddedRedis]]:
    """A Postgres and a Valkey of this test's own, so it can stop them."""
    pg = EmbeddedPostgres(server_tmp_path / "pg")
    rd = EmbeddedRedis(server_tmp_path / "redis", persist=True)
    env = {**base_env, "DATABASE_URL": pg.start(), "REDIS_URL": rd.start(), "DB_TIMEOUT": "1"}
    migrate(env["DATABASE_URL"])
    yield env, pg, rd
    rd.stop()
    pg.stop()


def test_redis_down_answers_503_fast_and_loses_nothing_accepted(own_services) -> None:  # type: ignore[no-untyped-def]
    env, _, rd = own_services
    web, url = start_web(env, free_port(), name="web-redis-outage")
    procs = [web, start_worker(env, name="worker-redis-outage"), start_ticker(env, name="ticker-redis-outage")]
    try:
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=10) as client:
            before = client.post("/v1/commands", json={"type": "system.noop", "echo": "before"}).json()["id"]
            wait_status(env["DATABASE_URL"], before, {"succeeded"})

            rd.stop()
            ready = httpx.get(url + "/readyz", timeout=10)
            assert ready.status_code == 503
            checks = ready.json()["detail"]["checks"]
            assert (
                checks["postgres"] == "ok"
                and checks["redis"].startswith("down")
                and checks["broker"].startswith("down")
            )
            # Postgres holds the truth: jobs are still readable, and new commands are still accepted
            assert client.get(f"/v1/jobs/{before}").json()["status"] == "succeeded"
            during = client.post("/v1/commands", json={"type": "system.noop", "echo": "during"})
            assert during.status_code == 202
            during_id = during.json()["id"]
            assert client.get(f"/v1/jobs/{during_id}").json()["status"] == "queued"

            rd.start()
            row = wait_status(env["DATABASE_URL"], during_id, {"succeeded"}, 60)
            assert row["result"] == {"echo": "during"}
            assert httpx.get(url + "/readyz", timeout=10).status_code == 200
    finally:
        stop_all(procs)


def test_postgres_down_answers_503_and_recovers(own_services) -> None:  # type: ignore[no-untyped-def]
    env, pg, _ = own_services
    web, url = start_web(env, free_port(), name="web-postgres-outage")
    try:
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=15) as client:
            assert client.post("/v1/commands", json={"type": "system.noop"}).status_code == 202
            pg.stop()
            refused = client.post("/v1/commands", json={"type": "system.noop"})
            assert refused.status_code == 503
            assert refused.json()["detail"]["dependency"] == "postgres"
            assert refused.headers["retry-after"] == "1"
            assert httpx.get(url + "/readyz", timeout=10).json()["detail"]["checks"]["postgres"].startswith("down")
            pg.start()
            wait_for(
                lambda: client.post("/v1/commands", json={"type": "system.noop"}).status_code == 202,
                30,
                0.5,
                "the API to accept commands again",
            )
    finally:
        web.stop()
