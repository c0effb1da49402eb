"""The API against its own OpenAPI document: schemathesis, every check it has, every phase, over HTTP.

The web process and a system worker run on a database and broker namespace of their own: the fuzzer
creates schedules firing every second and jobs sleeping for an hour, which must not reach the
session's shared stack. Generation is derandomized (a fixed seed, a few examples per operation),
so a run is repeatable and bounded.

A rule between fields or parameters that JSON Schema cannot state (an id used twice in one list, a
provision's target equal to its source, ``until`` before ``since``) is in the document's words; a
request breaking one is refused 422 naming the field. Those are the only answers a "schema-valid
request rejected" failure may be dropped for, each listed in CROSS_FIELD_RULES with the field it names.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from devservers import free_port
from tests.support import API_KEY, start_web, start_worker, stop_all

schemathesis = pytest.importorskip("schemathesis")

SEED = 20261202
#: what refuses a request: schemathesis's list, and 408 and 413 (a body too slow or too large)
REJECTIONS = ["400", "401", "403", "404", "405", "406", "408", "409", "413", "415", "422", "428", "429", "5XX"]
EXAMPLES = 8
#: (operation, the field detail.path names, the message): rules the document states in words only
CROSS_FIELD_RULES = [
    *(
        (operation, field, reason)
        for operation in (
            "POST /v1/commands",
            "POST /v1/schedules",
            "PATCH /v1/schedules/{name}",
            "POST /v1/rules",
            "PATCH /v1/rules/{name}",
        )
        for field, reason in (
            (r"\$(\..+)?\.source(\.series)?", r"is used twice|same freq|values;"),
            (r"\$(\..+)?\.source\.series\[\d+\]\.start", r"do not fit between"),
            (r"\$(\..+)?\.target_id", r"must differ from source_id"),
            (r"\$(\..+)?\.workspaces", r"is listed twice"),
            (r"\$(\..+)?", r"end is before start"),
            (r"\$(\..+)?\.cron", r"never fires"),
            (r"\$(\..+)?\.alert\.webhook_url", r"webhook_url is refused"),
        )
    ),
    # a change is checked with the schedule it changes: an alert on a schedule of another command
    ("PATCH /v1/schedules/{name}", r"\$(\.alert)?", r"alert needs a metrics.compute command"),
    # rules: among the enabled rules (a cycle, a chain too long), a webhook that resolves inward, a
    # placeholder no value fits
    *(
        (operation, field, reason)
        for operation in ("POST /v1/rules", "PATCH /v1/rules/{name}")
        for field, reason in (
            (r"\$\.(then\.command\.type|when\.type)", r"closes a cycle|longer than MAX_CHAIN_DEPTH"),
            (r"\$\.then\.notify\.slack", r"the webhook is refused"),
        )
    ),
    ("GET /v1/jobs", r"until", r"must be later than since"),
    # a cursor is opaque: only one the API returned is a cursor
    ("GET /v1/jobs", r"cursor", r"not one this API returned"),
    ("GET /v1/forecasts/{job_id}", r"cursor", r"not a cursor this API returned"),
    ("POST /v1/jobs/retry", r"until", r"must be later than since"),
    ("GET /ws", r"id|name", r"required for action="),
    ("GET /provision", r"target", r"must differ from source_id"),
]


@pytest.fixture(scope="module")
def fuzzed(postgres_server: str, base_env: dict[str, str]) -> Iterator[str]:
    """A web process and a system worker on a database and broker namespace of their own."""
    name = f"switchyard_fuzz_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = postgres_server.rsplit("/", 1)[0] + "/" + name
    from bus.migrate import migrate

    migrate(url)
    env = {k: v for k, v in base_env.items() if k != "OUTBOUND_ALLOW"} | {
        "DATABASE_URL": url,
        "BROKER_NAMESPACE": "syfuzz-" + uuid.uuid4().hex[:6],
    }
    web, base = start_web(env, free_port(), name="web-fuzz")
    worker = start_worker(env, name="worker-fuzz")
    yield base
    stop_all([web, worker])
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _refused_for_a_cross_field_rule(failure: object, case: object, response: object) -> bool:
    if getattr(failure, "code", "") != "ST202" or getattr(response, "status_code", 0) != 422:
        return False
    try:
        detail = response.json()["detail"]  # type: ignore[attr-defined]
        path, message = str(detail.get("path", "")), str(detail.get("message", ""))
    except (ValueError, KeyError, AttributeError):
        return False
    label = case.operation.label  # type: ignore[attr-defined]
    return any(
        label == operation and re.fullmatch(field, path) and re.search(reason, message)
        for operation, field, reason in CROSS_FIELD_RULES
    )


def test_the_api_answers_as_its_openapi_document_says(fuzzed: str) -> None:
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import Status, events, from_schema

    auth = {"Authorization": f"Bearer {API_KEY}", "X-API-Key": API_KEY}
    document = httpx.get(fuzzed + "/openapi.json", headers=auth, timeout=10).json()
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "workers": 1,
            "base-url": fuzzed,
            "headers": auth,
            # a body over the size limit is refused too: 413 is a rejection
            "checks": {"enabled": True, "negative_data_rejection": {"expected-statuses": REJECTIONS}},
            "generation": {"max-examples": EXAMPLES, "deterministic": True},
            "phases": {"stateful": {"max-steps": 20}},
            "request-timeout": 30,
            # no GoodData here: /ws and /provision answer 202 at once instead of waiting for a job
            "operations": [
                {"include-path-regex": "^/(ws|provision)$", "parameters": {"wait": 0}},
                # the command union's positive coverage alone takes a minute (a valid value of each of
                # thirty commands, field by field): its valid commands come from the fuzzing phase, its
                # boundaries from the negative coverage; a schedule's command is that same union, so
                # schedules are fuzzed (and followed by their links), not covered again
                {"include-path": "/v1/commands", "phases": {"coverage": {"generation": {"mode": "negative"}}}},
                {"include-path-regex": "^/v1/(schedules|rules)", "phases": {"coverage": {"enabled": False}}},
            ],
        }
    )
    schema = schemathesis.openapi.from_dict(document, config=config)

    @schema.hook
    def filter_failure(context: object, failure: object, case: object, response: object) -> bool:
        return not _refused_for_a_cross_field_rule(failure, case, response)

    problems: list[str] = []
    tested = 0
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            tested += len(event.recorder.cases)
            for checks in event.recorder.checks.values():
                problems += [_failed(check.failure_info) for check in checks if check.status == Status.FAILURE]
        elif isinstance(event, events.NonFatalError):
            problems.append(f"error in {event.label}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            problems.append(f"fatal: {event.exception!r}")
    assert tested > 1000, f"only {tested} test cases ran"
    unique = list(dict.fromkeys(problems))
    assert not unique, f"{len(unique)} failures:\n\n" + "\n\n".join(unique[:30])


def _failed(info: object) -> str:
    if info is None:
        return "a check failed without details"
    failure = info.failure  # type: ignore[attr-defined]
    return f"{failure.operation}: {failure.title}: {failure.message}\n{info.code_sample}"  # type: ignore[attr-defined]
