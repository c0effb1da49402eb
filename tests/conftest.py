"""Test services: real PostgreSQL and Redis (embedded unless TEST_DATABASE_URL /
TEST_REDIS_URL name servers), a fresh database per session, and a running stack
(web, system worker, ticker) shared by the end-to-end tests."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devservers import EmbeddedPostgres, EmbeddedRedis, free_port
from tests.support import (
    API_KEY,
    Proc,
    drop_database,
    fresh_database,
    server_dir,
    start_ticker,
    start_web,
    start_worker,
    stop_all,
)

pytest_plugins = ["tests.browser"]

warnings.filterwarnings("ignore", module="platformdirs")


@pytest.fixture(scope="session", autouse=True)
def compiled_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    """statsforecast's numba kernels, compiled by the session's first fitting process and loaded by
    every later one. Each forecast worker (there are several in the suite, and make up's) spawns
    fitting processes, and each compiles the kernels in about 35 CPU seconds unless statsforecast's
    cache is on (NIXTLA_NUMBA_CACHE); loading them takes about 7. Set here, before any fixture copies
    the environment for its processes; a cache directory of the session's own, so no run depends on
    an earlier one."""
    os.environ.setdefault("NIXTLA_NUMBA_CACHE", "1")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(tmp_path_factory.mktemp("numba")))


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    with server_dir("services") as path:
        yield path


@pytest.fixture()
def server_tmp_path() -> Iterator[Path]:
    """A test's own directory for embedded servers' data (see tests.support.server_dir)."""
    with server_dir("test") as path:
        yield path


@pytest.fixture(scope="session")
def postgres_server(data_dir: Path) -> Iterator[str]:
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
        return
    server = EmbeddedPostgres(data_dir / "postgres")
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def redis_url(data_dir: Path) -> Iterator[str]:
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    server = EmbeddedRedis(data_dir / "redis", persist=False)
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def database_url(postgres_server: str) -> Iterator[str]:
    """A database of its own for this session, dropped at the end."""
    url = fresh_database(postgres_server, prefix="test")
    yield url
    drop_database(postgres_server, url)


@pytest.fixture(scope="session")
def base_env(database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"BROKER_URL", "DATABASE_URL", "REDIS_URL", "API_KEYS"}}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        API_KEYS=f"{API_KEY},second-key-for-rotation",
        BROKER_NAMESPACE="sytest-" + uuid.uuid4().hex[:6],
        MAX_RETRIES="2",
        MIN_BACKOFF_MS="200",
        MAX_BACKOFF_MS="1000",
        SWEEP_INTERVAL_S="0.5",
        ENQUEUE_GRACE_S="1",
        PYTHONUNBUFFERED="1",
        dramatiq_restart_delay="500",
        # the tests' webhook receivers listen on loopback, which outbound calls refuse by default
        OUTBOUND_ALLOW="127.0.0.1/32",
        # every test that sends a wrong key does it from 127.0.0.1 (and the fuzz test's auth probes):
        # the failed-key throttle is tested on a web process of its own (tests/test_edges.py)
        API_KEY_FAILURE_LIMIT="100000",
    )
    # this process (contracts.publish, the job store) sees the same settings
    for name in ("DATABASE_URL", "REDIS_URL", "API_KEYS", "BROKER_NAMESPACE", "MAX_RETRIES"):
        os.environ[name] = env[name]
    from bus import settings

    settings.get.cache_clear()
    return env


@pytest.fixture(scope="session")
def stack(base_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """web + system worker + ticker on the session's services."""
    web, url = start_web(base_env, free_port())
    procs: list[Proc] = [web, start_worker(base_env), start_ticker(base_env)]
    yield {"url": url, **base_env}
    stop_all(procs)


@pytest.fixture()
def client(stack: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack["url"], headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10) as c:
        yield c


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    url = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(url + "?connection_attempts=1&socket_timeout=2")).close()
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"RabbitMQ is not reachable at {url.split('@')[-1]} ({err.__class__.__name__})")
    return url


@pytest.fixture(scope="module")
def replay():  # type: ignore[no-untyped-def]
    """A GoodData replay server over the recordings, one per test module (it replays in order)."""
    from tests.gooddata_replay import ReplayServer
    from tests.gooddata_support import need_recordings

    need_recordings()
    server = ReplayServer().start()
    yield server
    server.stop()
