"""Real processes for the tests: uvicorn, Dramatiq workers and the ticker, each a subprocess."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "output"
API_KEY = "test-key-" + "x" * 24


@contextlib.contextmanager
def server_dir(name: str) -> Iterator[Path]:
    """A directory for an embedded server's data, removed afterwards. Not under pytest's temporary
    root: a pytest session starting meanwhile on the same machine makes that root private to its
    user (mode 0700), and PostgreSQL, which runs as a user of its own when the tests run as root,
    would lose its data directory mid-run (a PANIC on pg_control)."""
    path = Path(tempfile.mkdtemp(prefix=f"switchyard-{name}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def wait_for(
    predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Proc:
    """A child process with its output in tests/output/<name>.log."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = OUTPUT / f"{name}.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.log.write(f"\n=== {time.strftime('%H:%M:%S')} start {' '.join(args)}\n".encode())
        self.log.flush()
        #: where this run's output begins (the file keeps earlier runs' for reading after a failure)
        self._offset = self.log.tell()
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        """What this process has written so far (not earlier runs under the same name)."""
        with open(self.log_path, "rb") as log:
            log.seek(self._offset)
            return log.read().decode(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (Dramatiq forks worker processes)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15) -> None:
        stop_all([self], timeout)


def stop_all(procs: Iterable[Proc], timeout: float = 15) -> None:
    """SIGTERM to every process before waiting for any: a teardown of several takes as long as the
    slowest to stop, not the sum. What has not stopped by the deadline is killed."""
    procs = list(procs)
    running = [proc for proc in procs if proc.alive()]
    for proc in running:
        proc.kill(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        if proc in running:
            try:
                proc.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill(signal.SIGKILL)
                proc.popen.wait(5)
        else:
            proc.kill(signal.SIGKILL)  # children of a dead parent
        proc.log.close()


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def web_command() -> str:
    """The Procfile's web command (its flags are what production runs), with this interpreter's uvicorn."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == "web":
            assert command.strip().startswith("uvicorn "), command
            return command.strip().replace("uvicorn", f"{shlex.quote(sys.executable)} -m uvicorn", 1)
    raise AssertionError("the Procfile has no web process")


def start_web(env: dict[str, str], port: int, name: str = "web") -> tuple[Proc, str]:
    proc = Proc(name, ["sh", "-c", "exec " + web_command()], {**env, "WEB_HOST": "127.0.0.1", "WEB_PORT": str(port)})
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if not proc.alive():
            raise AssertionError(f"web exited: {proc.output()[-2000:]}")
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 30, what="the web process")
    return proc, url


def start_worker(env: dict[str, str], pool: str = "system", name: str | None = None, threads: int = 4) -> Proc:
    return Proc(
        name or f"worker-{pool}",
        python(
            "-m", "dramatiq", f"workers.pools.{pool}", "--queues", pool, "--processes", "1", "--threads", str(threads)
        ),
        env,
    )


def start_rules(env: dict[str, str], name: str = "worker-rules", threads: int = 4) -> Proc:
    """The rule processor: the rules pool, consuming the events queue (as the Procfile runs it)."""
    return Proc(
        name,
        python(
            "-m", "dramatiq", "workers.pools.rules", "--queues", "events", "--processes", "1", "--threads", str(threads)
        ),
        env,
    )


def start_ticker(env: dict[str, str], name: str = "ticker") -> Proc:
    return Proc(name, python("-m", "workers.ticker"), env)


def job_row(database_url: str, job_id: str) -> dict[str, Any] | None:
    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM jobs WHERE id = %s", (job_id,)).fetchone()


def wait_status(database_url: str, job_id: str, statuses: set[str], timeout: float = 30) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        row = job_row(database_url, job_id)
        return row if row and row["status"] in statuses else None

    return wait_for(check, timeout, 0.1, f"job {job_id} to reach {statuses}")


def auth(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def fresh_database(postgres_server: str, prefix: str = "rules") -> str:
    """A new database on ``postgres_server``, migrated: a test module's (or the session's) own."""
    from bus.migrate import migrate

    name = f"switchyard_{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = postgres_server.rsplit("/", 1)[0] + "/" + name
    migrate(url)
    return url


def drop_database(postgres_server: str, url: str) -> None:
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
