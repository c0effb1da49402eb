"""Hostile bodies on every route that reads one, against the real web process: nesting a decoder
would recurse into, numbers out of any range, bytes that are not UTF-8, NUL inside the JSON. Each
is a 4xx naming what is wrong, never a 5xx, and changes nothing."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from contracts.nesting import MAX_DEPTH

DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
JUST_TOO_DEEP = b'{"type": "system.noop", "echo": "x", "extra": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}"

#: (method, path) of every route that reads a JSON body
BODY_ROUTES = [
    ("POST", "/v1/commands"),
    ("POST", "/v1/schedules"),
    ("PATCH", "/v1/schedules/hostile"),
    ("POST", "/schedule"),
    ("PUT", "/v1/tables/retail.sales/rows"),
]
HOSTILE_BODIES = {
    "deep array": DEEP_ARRAY,
    "deep object": DEEP_OBJECT,
    "deep inside a command": b'{"type": "system.noop", "echo": ' + DEEP_ARRAY + b"}",
    "deep inside a row": b'[{"sale_id": ' + DEEP_ARRAY + b"}]",
    "deep inside rows of a command": b'{"type": "pipelines.ingest", "table": "retail.sales", "rows": [{"a": '
    + DEEP_OBJECT
    + b"}]}",
    "one level too deep": JUST_TOO_DEEP,
    "huge exponent": b'{"type": "system.sleep", "seconds": 1e400}',
    "huge integer": b'{"type": "system.sleep", "seconds": 1' + b"0" * 5000 + b"}",
    "not UTF-8": b'{"type": "system.noop", "echo": "\xff\xfe"}',
    "NUL escaped": b'{"type": "system.noop", "echo": "a\\u0000b"}',
    "NUL raw": b'{"type": "system.noop", "echo": "a\x00b"}',
    "lone surrogate": b'{"type": "system.noop", "echo": "\\ud800"}',
}


def job_count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM jobs").fetchone()[0]  # type: ignore[index]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_hostile_bodies_are_refused_with_a_4xx_and_change_nothing(
    client: httpx.Client, stack: dict[str, str], method: str, path: str
) -> None:
    before = job_count(stack["DATABASE_URL"])
    answers = {}
    for name, body in HOSTILE_BODIES.items():
        answer = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
        answers[name] = answer.status_code
        assert 400 <= answer.status_code < 500, f"{name} on {method} {path}: {answer.status_code} {answer.text[:300]}"
        assert "Traceback" not in answer.text
        error = answer.json()
        assert error.get("error") and error.get("detail") is not None, answer.text
    assert job_count(stack["DATABASE_URL"]) == before, f"a hostile body was recorded: {answers}"
    assert client.get("/v1/schedules/hostile").status_code == 404


def test_nesting_at_the_limit_is_decoded_and_one_more_level_is_refused(client: httpx.Client) -> None:
    too_deep = client.post("/v1/commands", content=JUST_TOO_DEEP, headers={"Content-Type": "application/json"})
    assert too_deep.status_code == 400 and too_deep.json()["error"] == "too_deep", too_deep.text
    assert too_deep.json()["detail"]["path"] == "$"
    # one level less is decoded, and refused for what it is: a field the command does not have
    fits = b'{"type": "system.noop", "echo": "x", "extra": ' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
    decoded = client.post("/v1/commands", content=fits, headers={"Content-Type": "application/json"})
    assert decoded.status_code == 422 and "extra" in decoded.text, decoded.text
