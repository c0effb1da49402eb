"""python -m ingress: publish, jobs, job, migrate."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import ROOT, wait_status


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingress", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_publish_from_stdin_then_read_the_job(stack: dict[str, str]) -> None:
    run = cli(stack, "publish", "-", stdin=json.dumps({"type": "system.noop", "echo": "cli"}))
    assert run.returncode == 0, run.stderr
    job_id = run.stdout.strip()
    wait_status(stack["DATABASE_URL"], job_id, {"succeeded"})
    shown = cli(stack, "job", job_id)
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["result"] == {"echo": "cli"}
    listed = cli(stack, "jobs", "--status", "succeeded", "--type", "system.noop", "--limit", "500")
    assert job_id in listed.stdout


def test_publish_a_list_from_a_file_with_an_idempotency_key(stack: dict[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "commands.json"
    path.write_text(json.dumps([{"type": "system.noop", "echo": "a"}, {"type": "system.noop", "echo": "b"}]))
    first = cli(stack, "publish", str(path), "--idempotency-key", "batch-7")
    again = cli(stack, "publish", str(path), "--idempotency-key", "batch-7")
    assert first.returncode == again.returncode == 0
    ids = first.stdout.split()
    assert len(ids) == 2 and len(set(ids)) == 2 and again.stdout.split() == ids
    for job_id in ids:
        wait_status(stack["DATABASE_URL"], job_id, {"succeeded"})


def test_an_invalid_command_is_refused_with_its_path_and_nothing_is_sent(stack: dict[str, str]) -> None:
    run = cli(
        stack, "publish", "-", stdin=json.dumps([{"type": "system.noop"}, {"type": "system.sleep", "seconds": -2}])
    )
    assert run.returncode != 0
    assert "$[1].seconds" in run.stderr and "Traceback" not in run.stderr
    assert run.stdout == ""  # the valid first command was not sent either
    bad_json = cli(stack, "publish", "-", stdin="{oops")
    assert bad_json.returncode != 0 and "Traceback" not in bad_json.stderr


def test_unknown_job_and_migrate(stack: dict[str, str]) -> None:
    missing = cli(stack, "job", "does-not-exist")
    assert missing.returncode == 1 and "no job does-not-exist" in missing.stderr
    assert cli(stack, "migrate").stdout.strip() == "up to date"
