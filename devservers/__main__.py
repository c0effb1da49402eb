"""``python -m devservers up``: what ``make up`` runs.

1. Reads ``.data/local.env`` (created on the first run with a fresh random API key).
2. Starts an embedded PostgreSQL and Valkey (data under ``.data/``) for whichever of
   ``DATABASE_URL`` / ``REDIS_URL`` is not set in the environment.
3. Applies the migrations, prints the URL, the API key and a curl example.
4. Runs every Procfile process with honcho until Ctrl-C, then stops the servers it started.

``python -m devservers env`` prints the environment of the local run (for a second shell).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import warnings
from pathlib import Path

DATA = Path(os.environ.get("SWITCHYARD_DATA", ".data"))
LOCAL_ENV = DATA / "local.env"


def local_env() -> dict[str, str]:
    """The generated settings of the local run; the API key is made once and kept."""
    DATA.mkdir(parents=True, exist_ok=True)
    values: dict[str, str] = {}
    if LOCAL_ENV.exists():
        for line in LOCAL_ENV.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not name.startswith("#"):
                values[name.strip()] = value.strip()
    if not values.get("API_KEYS"):
        values["API_KEYS"] = "sy_" + secrets.token_urlsafe(24)
        LOCAL_ENV.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        LOCAL_ENV.chmod(0o600)
    return values


def prepare() -> tuple[dict[str, str], list]:  # type: ignore[type-arg]
    warnings.filterwarnings("ignore", module="platformdirs")
    from devservers.servers import EmbeddedPostgres, EmbeddedRedis

    env = dict(os.environ)
    # the Procfile's commands (uvicorn, dramatiq, python) are this virtualenv's
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for name, value in local_env().items():
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
    return env, started


def banner(env: dict[str, str]) -> str:
    port = env.get("WEB_PORT", "8000")
    key = env["API_KEYS"].split(",")[0]
    where = "from DATABASE_URL" if "DATABASE_URL" in os.environ else f"embedded, data in {DATA}/"
    return f"""
  Switchyard is starting on http://127.0.0.1:{port}
  API key:  {key}
  Postgres: {where}
  Try:
    curl -s -X POST http://127.0.0.1:{port}/v1/commands \\
      -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
      -d '{{"type": "system.sleep", "seconds": 2}}'
    curl -s http://127.0.0.1:{port}/v1/jobs -H "Authorization: Bearer {key}"
  Stop with Ctrl-C.
"""


def up() -> int:
    env, started = prepare()
    try:
        from bus.migrate import migrate

        migrate(env["DATABASE_URL"])
        print(banner(env), flush=True)
        honcho = [sys.executable, "-m", "honcho", "start", "-f", "Procfile"]
        if env.get("HONCHO_CONCURRENCY"):
            honcho += ["-c", env["HONCHO_CONCURRENCY"]]
        return subprocess.call(honcho, env=env)
    except KeyboardInterrupt:
        return 0
    finally:
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
