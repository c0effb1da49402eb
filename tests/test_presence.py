"""A process's presence entry through a Redis outage: the beacon keeps going and comes back by itself."""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec
import pytest
import redis

from bus.presence import Beacon, Member, member_key, members_key
from devservers import EmbeddedRedis, free_port
from tests.support import wait_for


def test_a_redis_outage_never_stops_a_beacon_and_it_comes_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = EmbeddedRedis(tmp_path / "redis", free_port(), persist=False)  # not started yet: Redis is down
    client = redis.Redis.from_url(server.url, socket_connect_timeout=0.5, socket_timeout=1)
    beacon = Beacon("worker", pool="system", queues=["system"], threads=2, client=client, namespace="outage")
    key = member_key("outage", beacon.id)
    caplog.set_level(logging.INFO, logger="bus.presence")
    try:
        beacon.start()
        beacon.begin("job-1", "system.sleep")
        wait_for(lambda: "presence beat failed" in caplog.text, 30, 0.1, "the outage to be logged")
        # the jobs are tracked meanwhile; nothing was raised into the worker
        assert [j.id for j in beacon.snapshot().jobs] == ["job-1"]

        server.start()
        raw = wait_for(lambda: client.get(key), 30, 0.1, "the entry once Redis is back")
        member = msgspec.json.decode(raw, type=Member)
        assert (member.role, member.pool, member.queues, member.threads) == ("worker", "system", ["system"], 2)
        assert [(j.id, j.type) for j in member.jobs] == [("job-1", "system.sleep")]
        assert client.zscore(members_key("outage"), beacon.id) is not None
        assert "presence beat works again" in caplog.text

        beacon.end("job-1")
        wait_for(
            lambda: msgspec.json.decode(client.get(key) or b"{}", type=dict).get("jobs") == [],
            30,
            0.1,
            "the ended job to leave the entry",
        )
        beacon.stop()
        assert client.get(key) is None and client.zscore(members_key("outage"), beacon.id) is None
    finally:
        beacon.stop()
        if server.running():
            server.stop()
        client.close()
