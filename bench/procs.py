"""Child processes of the bench, each the leader of its own process group.

Stopping a child signals its whole group, so what it forked (Dramatiq's worker
processes) stops with it even when the leader has already died.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "bench" / "out"
T = TypeVar("T")


class BenchError(RuntimeError):
    """A scenario could not produce its figures (a process died, a wait timed out)."""


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def python(*args: str) -> list[str]:
    """A command line run by this interpreter (the project's venv)."""
    return [sys.executable, *args]


class Proc:
    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str]) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOGS / f"{name}.log"
        with self.log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
            self.popen = subprocess.Popen(
                list(args), cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started = time.perf_counter()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 1500) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def check(self) -> None:
        if not self.alive():
            raise BenchError(f"{self.name} exited with code {self.popen.returncode}:\n{self.tail()}")

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the leader, SIGKILL to the group after ``timeout`` and for anything left behind.

        Only the leader gets the SIGTERM: Dramatiq's parent forwards it to its workers,
        which would take a second one as "kill now".
        """
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(5)
        self._signal_group(signal.SIGKILL)  # anything the leader left behind


@contextlib.contextmanager
def running(name: str, args: Sequence[str], env: Mapping[str, str]) -> Iterator[Proc]:
    proc = Proc(name, args, env)
    try:
        yield proc
    finally:
        proc.stop()


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
    watch: Sequence[Proc] = (),
) -> T:
    """Poll ``predicate`` until it returns a truthy value; fail early if a watched process dies."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        for proc in watch:
            proc.check()
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def publish_results(name: str, text: str) -> None:
    """Write ``bench/RESULTS-<name>.md`` and show it."""
    (ROOT / "bench" / f"RESULTS-{name}.md").write_text(text + "\n")
    print(text)
