"""Bad input over HTTP: a clear JSON error with the field, the right status, nothing written."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest

from tests.support import API_KEY


def job_count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM jobs").fetchone()[0]  # type: ignore[index]


def test_health_checks_need_no_key(stack: dict[str, str]) -> None:
    assert httpx.get(stack["url"] + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(stack["url"] + "/readyz").json()
    assert ready == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok", "broker": "ok"}}


@pytest.mark.parametrize("path", ["/v1/jobs", "/metrics", "/openapi.json", "/v1/jobs/x", "/v1/rejected-messages"])
def test_every_other_route_needs_a_key(stack: dict[str, str], path: str) -> None:
    missing = httpx.get(stack["url"] + path)
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = httpx.get(stack["url"] + path, headers={"X-API-Key": API_KEY + "x"})
    assert wrong.status_code == 403
    assert wrong.json() == {"error": "forbidden", "detail": "the API key is not valid"}


def test_both_header_forms_and_every_configured_key_are_accepted(stack: dict[str, str]) -> None:
    for headers in ({"Authorization": f"Bearer {API_KEY}"}, {"X-API-Key": "second-key-for-rotation"}):
        assert httpx.get(stack["url"] + "/v1/jobs?limit=1", headers=headers).status_code == 200


BAD_BODIES = [
    (b"{not json", 400, "malformed_json", None),
    (b"[1, 2]", 422, "invalid", "$"),
    (b'{"type": "system.sleep", "seconds": 1, "extra": true}', 422, "invalid", "$"),
    (b'{"type": "system.sleep", "seconds": "soon"}', 422, "invalid", "$.seconds"),
    (b'{"type": "system.sleep", "seconds": 99999}', 422, "invalid", "$.seconds"),
    (b'{"type": "no.such.command"}', 422, "invalid", "$.type"),
    (
        b'{"type": "metrics.compute", "model_id": "6d6a8224-de68-4603-b2db-63e01d34f020", "metrics": []}',
        422,
        "invalid",
        "$.metrics",
    ),
]


@pytest.mark.parametrize(("body", "status", "error", "path"), BAD_BODIES)
def test_bad_commands_are_refused_with_the_field_and_write_nothing(
    client: httpx.Client, stack: dict[str, str], body: bytes, status: int, error: str, path: str | None
) -> None:
    before = job_count(stack["DATABASE_URL"])
    response = client.post("/v1/commands", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error"] == error
    if path is not None:
        assert payload["detail"]["path"] == path
        assert payload["detail"]["message"]
    assert "Traceback" not in response.text
    assert job_count(stack["DATABASE_URL"]) == before


def test_other_content_types_empty_and_oversized_bodies(client: httpx.Client, stack: dict[str, str]) -> None:
    before = job_count(stack["DATABASE_URL"])
    form = client.post("/v1/commands", content=b"type=system.noop", headers={"Content-Type": "text/plain"})
    assert form.status_code == 415 and form.json()["error"] == "unsupported_media_type"
    empty = client.post("/v1/commands", content=b"", headers={"Content-Type": "application/json"})
    assert empty.status_code == 400 and empty.json()["error"] == "empty_body"
    big = b'{"type": "system.noop", "echo": "' + b"x" * 2_000_000 + b'"}'
    declared = client.post("/v1/commands", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413 and declared.json()["detail"] == {"limit_bytes": 1_048_576}

    def chunks():  # no Content-Length: the limit holds while streaming
        for _ in range(40):
            yield b"x" * 50_000

    streamed = client.post("/v1/commands", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert job_count(stack["DATABASE_URL"]) == before


def test_bad_headers_and_query_parameters(client: httpx.Client) -> None:
    bad_key = client.post("/v1/commands", json={"type": "system.noop"}, headers={"Idempotency-Key": "x" * 300})
    assert bad_key.status_code == 400 and bad_key.json()["detail"]["header"] == "idempotency-key"
    for query, field in [
        ("status=finished", "status"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("type=nope", "type"),
        ("cursor=!!!", "cursor"),
        ("colour=red", "colour"),
    ]:
        response = client.get(f"/v1/jobs?{query}")
        assert response.status_code == 422, query
        assert response.json()["detail"]["path"] == field


def test_rejected_messages_check_their_query(client: httpx.Client) -> None:
    listed = client.get("/v1/rejected-messages?queue=system&limit=5")
    assert listed.status_code == 200 and isinstance(listed.json()["items"], list)
    for query, field in [
        ("queue=nowhere", "queue"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("colour=red", "colour"),
    ]:
        response = client.get(f"/v1/rejected-messages?{query}")
        assert response.status_code == 422, query
        assert response.json()["detail"]["path"] == field


def test_unknown_routes_methods_and_jobs(client: httpx.Client) -> None:
    assert client.get("/v2/nothing").json() == {"error": "not_found", "detail": "Not Found"}
    assert client.delete("/v1/commands").status_code == 405
    missing = client.get("/v1/jobs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert client.post("/v1/jobs/nope/cancel").status_code == 404
    assert client.post("/v1/jobs/" + "x" * 500 + "/retry").status_code == 404


def test_openapi_is_built_from_the_contracts(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    schemas = doc["components"]["schemas"]
    command_refs = {ref["$ref"].rsplit("/", 1)[1] for ref in schemas["Command"]["anyOf"]}
    assert {"Noop", "Sleep", "WorkspaceCreate", "Forecast", "Compute", "ScheduleSet"} <= command_refs
    assert "#/$defs/" not in str(doc)
    assert "/v1/jobs/{job_id}/retry" in doc["paths"]


def test_openapi_describes_every_route_the_app_serves(client: httpx.Client) -> None:
    from starlette.routing import Route

    from bus.settings import from_env
    from ingress.app import create_app
    from ingress.ui.paths import is_ui_path

    documented = client.get("/openapi.json").json()["paths"]
    app = create_app(from_env({"API_KEYS": "k", "DATABASE_URL": "postgresql://unused@127.0.0.1:1/x"}))
    for route in app.routes:
        # the dashboard's HTML pages (/ui) are not API routes
        if isinstance(route, Route) and route.path != "/openapi.json" and not is_ui_path(route.path):
            methods = {m.lower() for m in route.methods or ()} - {"head"}
            assert route.path in documented, route.path
            assert methods <= set(documented[route.path]), (route.path, methods)


def test_what_the_openapi_document_promises_at_its_edges(client: httpx.Client) -> None:
    # one route per path: a method it lacks is answered 405 naming every method it has
    refused = client.options("/v1/schedules/some-name")
    assert refused.status_code == 405
    assert {m.strip() for m in refused.headers["allow"].split(",")} == {"GET", "HEAD", "PATCH", "DELETE"}
    # JSON Schema counts 2.0 an integer, and so does the API; 2.5 is not one
    whole = client.post("/v1/commands", json={"type": "system.sleep", "seconds": 0, "steps": 2.0})
    assert whole.status_code == 202, whole.text
    assert client.get(whole.json()["links"]["self"]).json()["command"]["steps"] == 2
    # an optional integer too (msgspec names it `int | null`)
    optional = client.post("/v1/commands", json={"type": "system.fail", "succeed_on_attempt": 1.0})
    assert optional.status_code == 202, optional.text
    half = client.post("/v1/commands", json={"type": "system.sleep", "seconds": 0, "steps": 2.5})
    assert half.status_code == 422 and half.json()["detail"]["path"] == "$.steps"
    # and in a schedule's command changed by PATCH
    name = f"whole-{uuid.uuid4().hex[:8]}"
    scheduled = {"name": name, "cron": "0 0 1 1 *", "command": {"type": "system.noop"}, "enabled": False}
    assert client.post("/v1/schedules", json=scheduled).status_code == 201
    changed = client.patch(
        f"/v1/schedules/{name}", json={"command": {"type": "system.fail", "succeed_on_attempt": 1.0}}
    )
    assert changed.status_code == 200 and changed.json()["command"]["succeed_on_attempt"] == 1, changed.text
    client.delete(f"/v1/schedules/{name}")
    # a model id is a UUID as the document writes it (8-4-4-4-12), not uuid.UUID's other spellings
    bare = client.get("/results/6d6a8224de684603b2db63e01d34f020")
    assert bare.status_code == 422 and bare.json()["detail"]["path"] == "model_id"
    # an empty cursor is the first page, as any empty parameter is one not given
    assert client.get("/v1/jobs?limit=1&cursor=").status_code == 200
    doc = client.get("/openapi.json").json()
    assert doc["components"]["schemas"]["ScheduleSpec"]["type"] == "object"  # not a reference to itself
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if operation.get("security") != []:
                assert {"401", "403", "429", "503"} <= set(operation["responses"]), (method, path)
            if "requestBody" in operation:
                assert {"400", "408", "413", "415", "422"} <= set(operation["responses"]), (method, path)
