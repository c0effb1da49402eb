from __future__ import annotations

import pytest

from bus.errors import describe, redact
from bus.settings import SettingsError, from_env


def test_settings_are_read_from_upper_case_variables() -> None:
    s = from_env({"MAX_RETRIES": "7", "API_KEYS": " a , b ,", "BROKER_URL": "amqp://x"})
    assert s.max_retries == 7
    assert s.keys == ("a", "b")
    assert s.broker == "amqp://x"
    assert from_env({"REDIS_URL": "redis://r:1/0"}).broker == "redis://r:1/0"


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="MAX_RETRIES"):
        from_env({"MAX_RETRIES": "many"})
    with pytest.raises(SettingsError, match="HEARTBEAT_TIMEOUT_MS"):
        from_env({"HEARTBEAT_TIMEOUT_MS": "10"})


def test_settings_never_print_their_secrets() -> None:
    s = from_env({"DATABASE_URL": "postgresql://u:hunter2@db/x", "API_KEYS": "sekrit"})
    assert "hunter2" not in repr(s) and "sekrit" not in repr(s)


def test_job_errors_do_not_carry_credentials() -> None:
    err = describe(RuntimeError('connection to "postgresql://app:hunter2@db:5432/x" failed; token=abc123'))
    assert "hunter2" not in err.message and "abc123" not in err.message
    assert err.type == "RuntimeError"
    assert redact("Authorization: Bearer s3cr3t") == "Authorization: Bearer ***"
    assert redact("password: hunter2, api_key=k1") == "password: ***, api_key=***"
    prose = "GoodData is not configured: set GOODDATA_HOST and GOODDATA_TOKEN for the gooddata pool"
    assert redact(prose) == prose


def test_forwarded_allow_ips_takes_addresses_and_networks_only() -> None:
    assert from_env({"FORWARDED_ALLOW_IPS": "10.0.0.0/8, 127.0.0.1,::1"}).forwarded_allow_ips
    assert from_env({}).forwarded_allow_ips == ""  # nobody's X-Forwarded-For is believed
    # uvicorn would take a typo as a literal that never matches, trusting no proxy without a word
    with pytest.raises(SettingsError, match=r"FORWARDED_ALLOW_IPS: 'proxy\.internal'"):
        from_env({"FORWARDED_ALLOW_IPS": "10.0.0.1,proxy.internal"})


def test_the_schedule_floor_and_the_failed_key_limit_are_settings() -> None:
    defaults = from_env({})
    assert (defaults.min_schedule_interval_s, defaults.api_key_failure_limit) == (1.0, 20)
    assert defaults.body_read_timeout_s == 30.0
    with pytest.raises(SettingsError, match="MIN_SCHEDULE_INTERVAL_S"):
        from_env({"MIN_SCHEDULE_INTERVAL_S": "-1"})


def test_event_queues_are_queue_names_besides_events() -> None:
    assert from_env({}).event_destinations == ("events",)
    assert from_env({"EVENT_QUEUES": " audit, events,billing.v2 ,audit"}).event_destinations == (
        "events",
        "audit",
        "billing.v2",
    )
    assert from_env({}).event_relay_batch == 500
    with pytest.raises(SettingsError, match=r"EVENT_QUEUES: 'audit\.DQ' is not a queue name"):
        from_env({"EVENT_QUEUES": "audit.DQ"})
    with pytest.raises(SettingsError, match=r"EVENT_QUEUES: 'a b'"):
        from_env({"EVENT_QUEUES": "a b"})
    # a pool's workers would dead-letter every event as a message of an actor they do not know
    with pytest.raises(SettingsError, match=r"EVENT_QUEUES: 'system' is a pool's command queue"):
        from_env({"EVENT_QUEUES": "system"})
    with pytest.raises(SettingsError, match="EVENT_RELAY_BATCH"):
        from_env({"EVENT_RELAY_BATCH": "0"})
    assert from_env({}).event_relay_poll_s == 0.2
    with pytest.raises(SettingsError, match="EVENT_RELAY_POLL_S"):
        from_env({"EVENT_RELAY_POLL_S": "0"})
