"""HTTP command -> broker -> worker -> job record -> polled result, on real processes."""

from __future__ import annotations

import uuid

import httpx
import redis

from bus.jobstore import decode, mirror_key, to_job
from tests.support import job_row, wait_for


def poll(client: httpx.Client, job_id: str, statuses: set[str], timeout: float = 30) -> dict:
    def check() -> dict | None:
        job = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] in statuses else None

    return wait_for(check, timeout, 0.1, f"job {job_id} to reach {statuses}")


def test_a_command_runs_and_its_result_is_polled(client: httpx.Client) -> None:
    accepted = client.post("/v1/commands", json={"type": "system.noop", "echo": "hello"})
    assert accepted.status_code == 202
    body = accepted.json()
    assert body["status"] == "queued"
    assert accepted.headers["location"] == f"/v1/jobs/{body['id']}" == body["links"]["self"]
    job = poll(client, body["id"], {"succeeded"})
    assert job["result"] == {"echo": "hello"}
    assert job["attempts"] == 1
    assert job["type"] == "system.noop" and job["queue"] == "system"
    assert job["started_at"] and job["finished_at"] and job["error"] is None


def test_redis_mirrors_the_status_postgres_holds(client: httpx.Client, stack: dict[str, str]) -> None:
    job_id = client.post("/v1/commands", json={"type": "system.noop", "echo": "mirrored"}).json()["id"]
    poll(client, job_id, {"succeeded"})
    mirrored = decode(redis.Redis.from_url(stack["REDIS_URL"]).get(mirror_key(job_id)))
    truth = to_job(job_row(stack["DATABASE_URL"], job_id))  # type: ignore[arg-type]
    assert mirrored == truth
    assert mirrored.status == "succeeded" and mirrored.result == {"echo": "mirrored"}


def test_progress_of_a_long_job_is_visible_while_it_runs(client: httpx.Client) -> None:
    job_id = client.post("/v1/commands", json={"type": "system.sleep", "seconds": 2, "steps": 4}).json()["id"]

    def midway() -> dict | None:
        job = client.get(f"/v1/jobs/{job_id}").json()
        progress = job.get("progress") or {}
        return job if job["status"] == "running" and 0 < progress.get("percent", 0) < 100 else None

    running = wait_for(midway, 20, 0.05, "progress while running")
    assert running["progress"]["message"].startswith("step ")
    done = poll(client, job_id, {"succeeded"})
    assert done["progress"]["percent"] == 100.0


def test_the_same_idempotency_key_returns_the_same_job(client: httpx.Client) -> None:
    key = f"order-{uuid.uuid4()}"
    command = {"type": "system.noop", "echo": "once"}
    first = client.post("/v1/commands", json=command, headers={"Idempotency-Key": key})
    second = client.post("/v1/commands", json=command, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    poll(client, first.json()["id"], {"succeeded"})
    third = client.post("/v1/commands", json=command, headers={"Idempotency-Key": key})
    assert third.json() == {**first.json(), "status": "succeeded"}
    conflict = client.post(
        "/v1/commands", json={"type": "system.noop", "echo": "other"}, headers={"Idempotency-Key": key}
    )
    assert conflict.status_code == 409
    assert conflict.json()["error"] == "idempotency_conflict"


def test_transient_failures_are_retried_with_backoff_then_succeed(client: httpx.Client) -> None:
    job_id = client.post("/v1/commands", json={"type": "system.fail", "succeed_on_attempt": 2}).json()["id"]
    job = poll(client, job_id, {"succeeded"})
    assert job["attempts"] == 2
    assert job["result"] == {"succeeded_on_attempt": 2}


def test_permanent_errors_are_not_retried_and_end_dead(client: httpx.Client) -> None:
    job_id = client.post(
        "/v1/commands", json={"type": "system.fail", "permanent": True, "message": "bad input"}
    ).json()["id"]
    job = poll(client, job_id, {"dead"})
    assert job["attempts"] == 1
    assert job["error"] == {"type": "PermanentError", "message": "bad input"}


def test_exhausted_retries_end_dead_and_a_dead_job_can_be_retried(client: httpx.Client) -> None:
    # MAX_RETRIES=2 in the test stack: attempts 1, 2 and 3 fail, then the job is dead
    job_id = client.post("/v1/commands", json={"type": "system.fail", "succeed_on_attempt": 4}).json()["id"]
    dead = poll(client, job_id, {"dead"})
    assert dead["attempts"] == 3
    assert dead["error"]["type"] == "RequestedFailure"
    listed = client.get("/v1/jobs", params={"status": "dead", "type": "system.fail", "limit": 500}).json()["items"]
    assert job_id in {j["id"] for j in listed}

    retried = client.post(f"/v1/jobs/{job_id}/retry")
    assert retried.status_code == 202 and retried.json()["status"] == "queued"
    done = poll(client, job_id, {"succeeded"})
    assert done["attempts"] == 4 and done["error"] is None
    again = client.post(f"/v1/jobs/{job_id}/retry")
    assert again.status_code == 409
    assert again.json()["detail"]["status"] == "succeeded"


def test_a_finished_job_cannot_be_cancelled(client: httpx.Client) -> None:
    job_id = client.post("/v1/commands", json={"type": "system.noop"}).json()["id"]
    poll(client, job_id, {"succeeded"})
    refused = client.post(f"/v1/jobs/{job_id}/cancel")
    assert refused.status_code == 409
    assert refused.json()["detail"] == {
        "job_id": job_id,
        "status": "succeeded",
        "message": "only a queued, running or retrying (failed) job can be cancelled",
    }


def test_jobs_are_listed_newest_first_with_a_cursor(client: httpx.Client) -> None:
    ids = [client.post("/v1/commands", json={"type": "system.noop", "echo": str(i)}).json()["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"type": "system.noop", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/jobs", params=params).json()
        assert len(page["items"]) <= 2
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    newest_first = [i for i in seen if i in ids]
    assert newest_first == list(reversed(ids))


def test_metrics_show_requests_jobs_queues_and_durations(client: httpx.Client) -> None:
    job_id = client.post("/v1/commands", json={"type": "system.noop"}).json()["id"]
    poll(client, job_id, {"succeeded"})
    text = client.get("/metrics").text
    assert 'switchyard_http_requests_total{method="POST",route="/v1/commands",status="202"}' in text
    assert value(text, 'switchyard_jobs_ended_total{queue="system",status="succeeded"}') >= 1
    assert 'switchyard_jobs{queue="system",status="queued"}' in text
    assert 'switchyard_queue_messages{queue="system",state="ready"}' in text
    assert value(text, 'switchyard_job_duration_seconds_count{queue="system"}') >= 1
    assert "switchyard_broker_up 1.0" in text
    # the counters move with the jobs: two more no-ops, two more endings and two more timed runs
    before = {
        name: value(text, name)
        for name in (
            'switchyard_jobs_ended_total{queue="system",status="succeeded"}',
            'switchyard_job_duration_seconds_count{queue="system"}',
            'switchyard_job_duration_seconds_bucket{le="+Inf",queue="system"}',
            # a no-op runs in well under 10 s: it lands in that bucket too
            'switchyard_job_duration_seconds_bucket{le="10",queue="system"}',
        )
    }
    for _ in range(2):
        poll(client, client.post("/v1/commands", json={"type": "system.noop"}).json()["id"], {"succeeded"})

    def counted() -> str | None:
        # the counters are written just after the batch's commit: the job can read succeeded first
        text = client.get("/metrics").text
        return text if all(value(text, name) >= was + 2 for name, was in before.items()) else None

    wait_for(counted, timeout=10, what="the endings counted")


def value(text: str, series: str) -> float:
    """The value of one series in Prometheus' text format (AssertionError when it is missing)."""
    found = [line for line in text.splitlines() if line.startswith(series + " ")]
    assert found, f"{series} is not in /metrics"
    return float(found[0].split()[-1])


def dead_jobs(client: httpx.Client, n: int) -> tuple[str, list[str]]:
    """``n`` jobs that die (MAX_RETRIES=2: attempts 1-3 fail) and succeed when run a 4th time, and a
    creation time before them that no earlier test's job has."""
    marker = client.post("/v1/commands", json={"type": "system.noop"}).json()["id"]
    since = client.get(f"/v1/jobs/{marker}").json()["created_at"]
    ids = [
        client.post("/v1/commands", json={"type": "system.fail", "succeed_on_attempt": 4}).json()["id"]
        for _ in range(n)
    ]
    for job_id in ids:
        poll(client, job_id, {"dead"})
    return since, ids


def test_dead_jobs_are_retried_in_bulk_by_filter(client: httpx.Client) -> None:
    since, ids = dead_jobs(client, 3)
    for bad, field in ((("status", "queued"),), "status"), ((("limit", "0"),), "limit"), ((("color", "red"),), "color"):
        refused = client.post("/v1/jobs/retry", params=dict(bad))
        assert refused.status_code == 422 and refused.json()["detail"]["path"] == field
    # only the dead jobs of this filter: system.fail created from `since` on
    answer = client.post("/v1/jobs/retry", params={"type": "system.fail", "since": since, "limit": 2})
    assert answer.status_code == 202
    first = answer.json()
    assert first["retried"] == 2 and set(first["ids"]) < set(ids)
    rest = client.post("/v1/jobs/retry", params={"queue": "system", "type": "system.fail", "since": since}).json()
    assert rest["retried"] == 1 and set(first["ids"]) | set(rest["ids"]) == set(ids)
    for job_id in ids:
        assert poll(client, job_id, {"succeeded"})["attempts"] == 4
    # nothing dead is left there: a second pass retries nothing
    assert client.post("/v1/jobs/retry", params={"type": "system.fail", "since": since}).json()["retried"] == 0


def test_commands_sent_at_once_are_each_recorded_once(client: httpx.Client, stack: dict[str, str]) -> None:
    # the ingress writes the requests of one turn of its event loop together: replays of one key in
    # the same batch get the job the first created, and every other command its own job
    from concurrent.futures import ThreadPoolExecutor

    key = f"burst-{uuid.uuid4().hex}"

    def send(n: int) -> httpx.Response:
        with httpx.Client(base_url=client.base_url, headers=client.headers, timeout=30) as c:
            if n % 2 == 0:  # one command under one key
                return c.post("/v1/commands", json={"type": "system.noop"}, headers={"Idempotency-Key": key})
            return c.post("/v1/commands", json={"type": "system.noop", "echo": f"n{n}"})

    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(send, range(48)))
    assert all(a.status_code == 202 for a in answers), [a.text for a in answers if a.status_code != 202]
    keyed = [a for n, a in enumerate(answers) if n % 2 == 0]
    assert len({a.json()["id"] for a in keyed}) == 1
    assert sum(a.headers.get("idempotent-replayed") != "true" for a in keyed) == 1  # exactly one created it
    unkeyed = [a.json()["id"] for n, a in enumerate(answers) if n % 2 == 1]
    assert len(set(unkeyed)) == 24 and keyed[0].json()["id"] not in unkeyed
    for job_id in [*unkeyed, keyed[0].json()["id"]]:
        assert poll(client, job_id, {"succeeded"})["status"] == "succeeded"
