"""``python -m devservers up``: what ``make up`` runs.

1. Reads ``.data/local.env`` (created on the first run with a fresh random API key).
2. Starts an embedded PostgreSQL and Valkey (data under ``.data/``) for whichever of
   ``DATABASE_URL`` / ``REDIS_URL`` is not set in the environment, and writes the URLs in use to
   ``.data/local.env``, where the command line (``python -m ingress``) finds them.
3. Applies the migrations, loads the demo data set once (devservers/demo.py; ``DEMO_DATA=0``
   turns it off), prints the URL, the API key and a curl example.
4. Runs every Procfile process with honcho, each under devservers/keepalive.py (a process that
   dies is started again with backoff instead of honcho stopping all the others), until Ctrl-C
   or SIGTERM, then stops the servers it started. It also stops when its parent (``make``) goes.

``python -m devservers env`` prints the environment of the local run (for a second shell).
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

from bus.settings import data_dir, local_env_file, read_env_file

DATA = data_dir()
LOCAL_ENV = local_env_file()
#: what this run writes for the command line and other shells; never read back as input (the
#: embedded servers are started whenever the environment does not name a server)
WRITTEN = ("DATABASE_URL", "REDIS_URL", "BROKER_URL")


def local_env() -> dict[str, str]:
    """The generated settings of the local run; the API key is made once and kept."""
    DATA.mkdir(parents=True, exist_ok=True)
    values = read_env_file(LOCAL_ENV) if LOCAL_ENV.exists() else {}
    if not values.get("API_KEYS"):
        values["API_KEYS"] = "sy_" + secrets.token_urlsafe(24)
        write_local_env(values)
    return values


def write_local_env(values: dict[str, str]) -> None:
    LOCAL_ENV.touch(mode=0o600)
    LOCAL_ENV.chmod(0o600)  # it holds the API key
    LOCAL_ENV.write_text(
        "# written by `make up`: the API key (kept) and the servers of the last run\n"
        + "".join(f"{k}={v}\n" for k, v in values.items())
    )


def prepare() -> tuple[dict[str, str], list]:  # type: ignore[type-arg]
    warnings.filterwarnings("ignore", module="platformdirs")
    from devservers.servers import EmbeddedPostgres, EmbeddedRedis

    env = dict(os.environ)
    # the Procfile's commands (uvicorn, dramatiq, python) are this virtualenv's
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    kept = local_env()
    for name, value in kept.items():
        if name not in WRITTEN:
            env.setdefault(name, value)
    started = []
    if not env.get("DATABASE_URL"):
        pg = EmbeddedPostgres(DATA / "postgres")
        env["DATABASE_URL"] = pg.start()
        started.append(pg)
    if not env.get("REDIS_URL"):
        rd = EmbeddedRedis(DATA / "redis")
        env["REDIS_URL"] = rd.start()
        started.append(rd)
    written = {k: v for k, v in kept.items() if k not in WRITTEN}
    written.update({name: env[name] for name in WRITTEN if env.get(name)})
    write_local_env(written)
    return env, started


def banner(env: dict[str, str], *, embedded: bool) -> str:
    port = env.get("WEB_PORT", "8000")
    key = env["API_KEYS"].split(",")[0]
    where = f"embedded, data in {DATA}/" if embedded else "from DATABASE_URL"
    return f"""
  Switchyard is starting on http://127.0.0.1:{port}
  API key:  {key}
  Postgres: {where}
  Try:
    curl -s -X POST http://127.0.0.1:{port}/v1/commands \\
      -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
      -d '{{"type": "system.sleep", "seconds": 2}}'
    curl -s http://127.0.0.1:{port}/v1/jobs -H "Authorization: Bearer {key}"
  In another shell: .venv/bin/python -m ingress jobs   (it reads {LOCAL_ENV})
  Stop with Ctrl-C.
"""


def procfile(env: dict[str, str]) -> Path:
    """The Procfile with every process under the keepalive (devservers/keepalive.py)."""
    lines = []
    for raw in Path("Procfile").read_text().splitlines():
        name, sep, command = raw.partition(":")
        if not sep or raw.lstrip().startswith("#"):
            continue
        wrapped = f"{shlex.quote(sys.executable)} -m devservers.keepalive {name.strip()} -- {command.strip()}"
        lines.append(f"{name.strip()}: {wrapped}")
    path = DATA / "Procfile.keepalive"
    path.write_text("\n".join(lines) + "\n")
    return path


class Stop(Exception):
    """SIGTERM, or the parent (``make``) went away: stop like Ctrl-C does."""


def _raise_stop(signum: int, _frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


def _watch_parent(honcho: subprocess.Popen[bytes]) -> None:
    """``kill <pid of make>`` alone would orphan us: follow our parent, and stop when it is gone."""
    parent = os.getppid()
    while honcho.poll() is None:
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            return
        threading.Event().wait(0.5)


def up() -> int:
    signal.signal(signal.SIGTERM, _raise_stop)
    env, started = prepare()
    honcho: subprocess.Popen[bytes] | None = None
    try:
        from bus.migrate import migrate
        from devservers import demo
        from devservers.servers import EmbeddedPostgres

        migrate(env["DATABASE_URL"])
        embedded = any(isinstance(server, EmbeddedPostgres) for server in started)
        print(demo.load_once(env, embedded=embedded), flush=True)
        print(banner(env, embedded=embedded), flush=True)
        command = [sys.executable, "-m", "honcho", "start", "-f", str(procfile(env))]
        if env.get("HONCHO_CONCURRENCY"):
            command += ["-c", env["HONCHO_CONCURRENCY"]]
        honcho = subprocess.Popen(command, env=env)
        threading.Thread(target=_watch_parent, args=(honcho,), daemon=True).start()
        return honcho.wait()
    except (KeyboardInterrupt, Stop):
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if honcho is not None and honcho.poll() is None:
            honcho.terminate()  # honcho passes it on to every process and waits for them
            try:
                honcho.wait(30)
            except subprocess.TimeoutExpired:
                honcho.kill()
        for server in started:
            server.stop()


def print_env() -> int:
    env, _ = prepare()
    for name in ("DATABASE_URL", "REDIS_URL", "API_KEYS"):
        print(f"export {name}='{env[name]}'")
    return 0


def stop() -> int:
    from devservers.servers import EmbeddedPostgres, EmbeddedRedis

    EmbeddedPostgres(DATA / "postgres").stop()
    EmbeddedRedis(DATA / "redis").stop()
    return 0


if __name__ == "__main__":
    commands = {"up": up, "env": print_env, "stop": stop}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        print("usage: python -m devservers up|env|stop", file=sys.stderr)
        sys.exit(2)
    sys.exit(commands[sys.argv[1]]())
