"""``python -m devservers.keepalive NAME -- COMMAND...``: run COMMAND, and start it again when it dies.

What ``make up`` wraps each worker pool in. Dramatiq's parent process shuts its whole pool down
when one worker child dies (``Worker with PID … exited unexpectedly … Shutting down``, exit 1), and
honcho stops every other process when one exits: without this, one killed worker child would take
the web process and the ticker down with it. Production supervisors do the same job
(docker-compose ``restart:``, systemd ``Restart=``, Kubernetes); this is the local run's.

- A restart waits with exponential backoff (``KEEPALIVE_MIN_S`` 0.5 s doubling to
  ``KEEPALIVE_MAX_S`` 30 s); a process that ran ``KEEPALIVE_RESET_S`` (60 s) before dying starts
  again after the shortest wait. Each restart is logged with its count and the exit status.
- SIGTERM and SIGINT are passed on to the command, and the keepalive exits with it: stopping
  ``make up`` stops the pool, and a clean exit (status 0) is not restarted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _log(name: str, text: str) -> None:
    sys.stderr.write(f"keepalive[{name}]: {text}\n")
    sys.stderr.flush()


def run(name: str, command: list[str]) -> int:
    shortest, longest = _seconds("KEEPALIVE_MIN_S", 0.5), _seconds("KEEPALIVE_MAX_S", 30.0)
    reset_after = _seconds("KEEPALIVE_RESET_S", 60.0)
    stopping = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: object) -> None:
        stopping.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    wait, restarts = shortest, 0
    while True:
        began = time.monotonic()
        child = subprocess.Popen(command)
        status = child.wait()
        if stopping.is_set():
            return 0  # asked to stop, and stopped
        if status == 0:
            return 0
        ran = time.monotonic() - began
        if ran >= reset_after:
            wait = shortest
        restarts += 1
        how = f"signal {-status}" if status < 0 else f"status {status}"
        _log(name, f"exited with {how} after {ran:.1f} s; restart {restarts} in {wait:.1f} s")
        if stopping.wait(wait):
            return 0
        wait = min(wait * 2, longest)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: python -m devservers.keepalive NAME -- COMMAND...\n")
        return 2
    return run(argv[0], argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
