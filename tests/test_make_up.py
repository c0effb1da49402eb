"""``make up`` as a new user runs it: from a clean copy of the tree, embedded servers, no
configuration. Every README example (read from README.md) reaches its documented end, the
command line finds the local run, a killed worker child is brought back while the web process
and the ticker go on serving, and SIGTERM leaves no process of it running."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devservers import free_port
from tests import readme_examples
from tests.support import OUTPUT, ROOT, wait_for

#: statuses a job ends in
FINAL = {"succeeded", "dead", "cancelled"}
#: what the README's examples end in, where it is not `succeeded`
#: (system.http: its example calls the web process itself, which OUTBOUND_ALLOW does not list under make up)
EXPECTED = {"system.fail": "dead", "system.http": "dead"}


class LocalRun:
    def __init__(self, root: Path, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.root = root
        self.url = f"http://127.0.0.1:{port}"
        self.proc = proc
        self.log = log
        self.last_job: str | None = None

    @property
    def key(self) -> str:
        env = (self.root / ".data" / "local.env").read_text()
        match = re.search(r"^API_KEYS=([^,\n]+)", env, re.M)
        assert match, env
        return match.group(1)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_job(self, client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            job = client.get(f"/v1/jobs/{job_id}").json()
            return job if job.get("status") in FINAL else None

        return wait_for(final, timeout, 0.2, f"job {job_id} to end")


def clean_copy(target: Path) -> None:
    """The files a clone has (tracked ones, and new ones not ignored), with their times kept, and
    the project's virtualenv (a fresh one would only install the same lock again)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv")


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a user who configured nothing: none of our settings (earlier tests set
    some in this process, BROKER_NAMESPACE for one)."""
    from bus.settings import Settings

    ours = {name.upper() for name in Settings.__struct_fields__} | {"DEMO_DATA", "SWITCHYARD_DATA"}
    env = {k: v for k, v in os.environ.items() if k not in ours and not k.startswith("KEEPALIVE_")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def processes_of(root: Path) -> list[str]:
    """Processes working in ``root`` or naming it (the embedded servers' data dirs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(root)) or str(root) in cmdline:
            found.append(f"{entry.name}: {cmdline[:160]}")
    return found


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    if not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("make up needs the project's .venv (make install)")
    root = tmp_path_factory.mktemp("clone")
    clean_copy(root)
    port = free_port()
    env = user_env(WEB_PORT=str(port))
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log = OUTPUT / "make-up.log"
    with open(log, "wb") as out:
        # `-o .venv/.installed`: the copy's lock is the checkout's, already installed; make must never
        # reinstall the shared virtualenv from the copy
        proc = subprocess.Popen(
            ["make", "-o", ".venv/.installed", "up"], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    run = LocalRun(root, port, proc, log)

    def serving() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"make up exited {proc.returncode}: {run.output()[-3000:]}")
        try:
            return httpx.get(run.url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(serving, 180, 0.5, "make up to serve")
    yield run
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    for line in processes_of(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line.split(":")[0]), signal.SIGKILL)


def run_http(run: LocalRun, client: httpx.Client, example: readme_examples.Example) -> None:
    url = example.url.replace("http://127.0.0.1:8000", run.url)
    if readme_examples.PLACEHOLDER.search(url):
        assert run.last_job, f"{example.line}: no job yet to stand for the placeholder"
        url = readme_examples.PLACEHOLDER.sub(run.last_job, url)
    headers = {k: v.replace("$KEY", run.key) for k, v in example.headers.items()}
    answer = client.request(example.method, url, headers=headers, content=example.body)
    assert answer.status_code < 400, f"{example.line}\n-> {answer.status_code} {answer.text[:500]}"
    body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else None
    if isinstance(body, dict) and body.get("status") == "queued" and "id" in body:
        run.last_job = body["id"]
        job = run.wait_job(client, body["id"])
        want = EXPECTED.get(job["type"], "succeeded")
        assert job["status"] == want, f"{example.line}\n-> job {job['status']}: {job.get('error')}"
    if "/v1/forecasts/" in url and isinstance(body, dict) and body.get("status") not in FINAL:
        body = wait_for(lambda: (b := client.get(url).json()).get("status") in FINAL and b, 120, 0.5, url)
    if "/results/" in url:
        body = wait_for(lambda: (r := client.get(url)).status_code == 200 and r.json(), 60, 0.5, url)
    if example.printed:
        problems = readme_examples.shape_problems(example.printed, body)
        assert not problems, f"{example.line}\nprinted {example.printed}\nanswered {json.dumps(body)[:800]}: {problems}"


def run_cli(run: LocalRun, example: readme_examples.Example) -> None:
    argv = [readme_examples.PLACEHOLDER.sub(run.last_job or "", a) for a in example.argv]
    stdin = None
    if "<" in argv:  # `publish - ... < command.json`
        at = argv.index("<")
        stdin, argv = (run.root / argv[at + 1]).read_text(), argv[:at]
    env = user_env()
    done = subprocess.run(
        [str(run.root / ".venv" / "bin" / "python"), "-m", "ingress", *argv],
        cwd=run.root, env=env, input=stdin, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, f"{example.line}\n-> {done.returncode}: {done.stderr[-1500:]}"
    if argv[0] == "publish":
        run.last_job = done.stdout.split()[-1]


def test_every_readme_example_works_as_printed(local_run: LocalRun) -> None:
    found = readme_examples.examples(ROOT / "README.md")
    sections = {e.section for e in found}
    assert {"Using it", "Schedules (the ticker)", "SQL pipelines (the `pipelines` pool)", "Command line"} <= sections
    ran = 0
    with local_run.client() as client:
        # the pool table first: the README's first examples
        for pool, commands in readme_examples.table_commands(ROOT / "README.md").items():
            for command in commands:
                accepted = client.post("/v1/commands", json=command)
                assert accepted.status_code == 202, f"{pool}: {command} -> {accepted.text}"
                job = local_run.wait_job(client, accepted.json()["id"])
                if pool == "gooddata":
                    # no organisation configured: the clear error of today, naming what to set
                    assert job["status"] == "dead" and "GOODDATA_HOST" in job["error"]["message"], job
                else:
                    want = "dead" if command.get("permanent") else "succeeded"
                    assert job["status"] == want, f"{pool}: {command} -> {job['status']} {job.get('error')}"
                ran += 1
        for code in readme_examples.python_publishing(ROOT / "README.md"):
            for job_id in run_python(local_run, code):
                job = wait_for(lambda j=job_id: _job_if_final(client, j), 90, 0.5, f"published job {job_id}")
                assert job["status"] == "succeeded", job
                ran += 1
        for example in found:
            if "GoodData" in example.section:
                continue  # needs a real organisation (the README says so)
            if example.kind == "cli":
                if example.argv[:1] == ["publish"] and "command.json" in example.line:
                    (local_run.root / "command.json").write_text(json.dumps({"type": "system.noop", "echo": "hi"}))
                run_cli(local_run, example)
            else:
                run_http(local_run, client, example)
            ran += 1
    assert ran >= 25, f"only {ran} examples found: is the README parsed?"


def run_python(run: LocalRun, code: str) -> list[str]:
    """A README Python block, run in the local run's environment; the job ids it published."""
    env = user_env()
    env.update((k, v) for k, v in _local_env(run).items() if k in ("REDIS_URL", "BROKER_URL"))
    # each `job_id = publish(...)` line's id, not only the last one
    script = re.sub(r"^(job_id = publish\(.*)$", r"\1\nprint(job_id)", code, flags=re.M)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=run.root, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{code}\n-> {done.stderr[-1500:]}"
    ids = done.stdout.split()
    assert ids, code
    return ids


def _local_env(run: LocalRun) -> dict[str, str]:
    from bus.settings import read_env_file

    return read_env_file(run.root / ".data" / "local.env")


def _job_if_final(client: httpx.Client, job_id: str) -> dict[str, Any] | None:
    reply = client.get(f"/v1/jobs/{job_id}")
    return reply.json() if reply.status_code == 200 and reply.json().get("status") in FINAL else None


def _dramatiq_children(root: Path, pool: str) -> list[int]:
    """The worker processes Dramatiq forked for ``pool`` (their parent runs the same command)."""
    mine = []
    for line in processes_of(root):
        pid = int(line.split(":")[0])
        if f"workers.pools.{pool}" not in line or "keepalive" in line:
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            parent_cmd = Path(f"/proc/{parent}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            continue
        if f"workers.pools.{pool}" in parent_cmd and "keepalive" not in parent_cmd:
            mine.append(pid)
    return mine


def test_a_killed_worker_child_is_brought_back_while_web_and_ticker_serve(local_run: LocalRun) -> None:
    children = wait_for(lambda: _dramatiq_children(local_run.root, "system"), 30, what="the system worker child")
    os.kill(children[0], signal.SIGKILL)
    killed_at = time.monotonic()
    with local_run.client() as client:
        # the pool's parent notices, shuts the pool down; the keepalive starts it again
        wait_for(lambda: "keepalive[system]: exited" in local_run.output(), 30, 0.2, "the keepalive to restart")
        assert local_run.proc.poll() is None, "make up stopped"
        assert client.get("/healthz").status_code == 200
        accepted = client.post("/v1/commands", json={"type": "system.noop", "echo": "back"}).json()
        job = local_run.wait_job(client, accepted["id"], timeout=60)
        back_s = time.monotonic() - killed_at
        assert job["status"] == "succeeded"
        # the ticker kept running: it was not stopped with the pool
        overview = client.get("/v1/jobs?limit=1")
        assert overview.status_code == 200
    assert "ticker.1 stopped" not in local_run.output() and "web.1 stopped" not in local_run.output()
    print(f"system pool serving again {back_s:.1f} s after its worker child was killed")
    assert back_s < 15, f"the pool took {back_s:.0f} s to come back (the promise: within 15 s)"


def test_the_command_line_finds_the_local_run_or_says_what_to_set(local_run: LocalRun, tmp_path: Path) -> None:
    env = user_env()
    python = str(local_run.root / ".venv" / "bin" / "python")

    def cli(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, "-m", "ingress", *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=60
        )

    listed = cli("jobs", "--limit", "3", cwd=local_run.root)
    assert listed.returncode == 0 and listed.stdout.strip(), listed.stderr
    # somewhere with no local run: one line naming the variables, no traceback, no database touched
    for args in (["jobs"], ["migrate"], ["publish", "-"]):
        lost = cli(*args, cwd=tmp_path, stdin='{"type": "system.noop"}')
        assert lost.returncode != 0 and "Traceback" not in lost.stderr, lost.stderr
        assert "DATABASE_URL" in lost.stderr and "REDIS_URL" in lost.stderr and len(lost.stderr.splitlines()) == 1
    # one idempotency key for two different commands: the second fails with HTTP's 409 message
    key = f"readme-{time.time_ns()}"
    first = cli(
        "publish", "-", "--idempotency-key", key, cwd=local_run.root, stdin='{"type": "system.noop", "echo": "a"}'
    )
    same = cli(
        "publish", "-", "--idempotency-key", key, cwd=local_run.root, stdin='{"type": "system.noop", "echo": "a"}'
    )
    other = cli(
        "publish", "-", "--idempotency-key", key, cwd=local_run.root, stdin='{"type": "system.noop", "echo": "b"}'
    )
    assert first.returncode == 0 and same.returncode == 0 and same.stdout == first.stdout, (first, same)
    assert other.returncode != 0 and other.stdout == "", other
    assert "this Idempotency-Key was used for a different command" in other.stderr and "Traceback" not in other.stderr


def test_sigterm_and_ctrl_c_stop_every_process_and_the_next_run_reuses_the_data(local_run: LocalRun) -> None:
    with local_run.client() as client:
        kept = client.post("/v1/commands", json={"type": "system.noop", "echo": "kept"}).json()["id"]
        local_run.wait_job(client, kept)
    assert processes_of(local_run.root), "nothing of make up is running"
    os.killpg(local_run.proc.pid, signal.SIGTERM)
    local_run.proc.wait(60)
    wait_for(
        lambda: not processes_of(local_run.root), 60, 0.5, f"every process to stop: {processes_of(local_run.root)}"
    )
    # the embedded servers' data outlives the run: a second make up answers for the same job
    log = local_run.root / "second-run.log"
    env = user_env(WEB_PORT=local_run.url.rsplit(":", 1)[1])
    with open(log, "wb") as out:
        second = subprocess.Popen(
            ["make", "-o", ".venv/.installed", "up"], cwd=local_run.root, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        with local_run.client() as client:

            def answered() -> dict[str, Any] | None:
                if second.poll() is not None:
                    raise AssertionError(log.read_text()[-2000:])
                try:
                    reply = client.get(f"/v1/jobs/{kept}")
                except httpx.HTTPError:
                    return None
                return reply.json() if reply.status_code == 200 else None

            assert wait_for(answered, 180, 0.5, "the second run")["status"] == "succeeded"
        assert "demo data: loaded before" in log.read_text()
    finally:
        os.killpg(second.pid, signal.SIGINT)  # Ctrl-C in the terminal: the whole foreground group
        second.wait(60)
    wait_for(lambda: not processes_of(local_run.root), 60, 0.5, "the second run to stop")
