"""GET /openapi.json, built from the contracts (the same schemas the bus validates with)."""

from __future__ import annotations

import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts.base import SCHEMA_VERSION
from contracts.schema import command_schema
from ingress.errors import json_response


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _job(description: str, status: str = "200") -> dict[str, Any]:
    return {
        status: {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}},
        }
    }


JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
COMMON = {"401": _error("missing API key"), "403": _error("wrong API key"), "503": _error("a dependency is down")}


@functools.cache
def document() -> dict[str, Any]:
    parts = command_schema()
    schemas = {k: v for k, v in parts["defs"].items()}
    schemas["Command"] = parts["command"]
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {"error": {"type": "string"}, "detail": {}},
    }
    schemas["Accepted"] = {
        "type": "object",
        "required": ["id", "status", "links"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string"},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    text = {"description": "text"}
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Switchyard", "version": f"schema {SCHEMA_VERSION}"},
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": {
            "/v1/commands": {
                "post": {
                    "summary": "Submit a command; it runs on the pool its type routes to",
                    "parameters": [
                        {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 255}},
                        {"name": "X-Trace-Id", "in": "header", "schema": {"type": "string", "maxLength": 255}},
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Command"}}},
                    },
                    "responses": {
                        "202": {
                            "description": "accepted: recorded and never lost",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
                        },
                        "400": _error("malformed JSON or header"),
                        "409": _error("Idempotency-Key reused for another command"),
                        "413": _error("body over the limit"),
                        "415": _error("not JSON"),
                        "422": _error("the command does not match its contract; detail.path names the field"),
                        **COMMON,
                    },
                }
            },
            "/v1/jobs": {
                "get": {
                    "summary": "List jobs, newest first",
                    "parameters": [
                        {"name": "status", "in": "query", "schema": {"$ref": "#/components/schemas/JobStatus"}},
                        {"name": "type", "in": "query", "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {"description": "{items: [Job], next_cursor}"},
                        "422": _error("bad filter"),
                        **COMMON,
                    },
                }
            },
            "/v1/jobs/{job_id}": {
                "get": {
                    "parameters": [JOB_ID],
                    "responses": {**_job("the job"), "404": _error("no such job"), **COMMON},
                }
            },
            "/v1/jobs/{job_id}/cancel": {
                "post": {
                    "summary": "Cancel a queued job",
                    "parameters": [JOB_ID],
                    "responses": {
                        **_job("cancelled"),
                        "404": _error("no such job"),
                        "409": _error("not queued"),
                        **COMMON,
                    },
                }
            },
            "/v1/jobs/{job_id}/retry": {
                "post": {
                    "summary": "Run a dead job again",
                    "parameters": [JOB_ID],
                    "responses": {
                        **_job("queued again", "202"),
                        "404": _error("no such job"),
                        "409": _error("not dead"),
                        **COMMON,
                    },
                }
            },
            "/v1/jobs/{job_id}/artifact": {
                "get": {
                    "summary": "The file the job produced (an export, a backup), streamed with its content type",
                    "parameters": [JOB_ID],
                    "responses": {
                        "200": {"description": "the file; Content-Disposition names it"},
                        "404": _error("no such job, or it has no artifact"),
                        **COMMON,
                    },
                }
            },
            "/v1/forecasts/{job_id}": {
                "get": {
                    "summary": "A forecast or anomalies job's series: model, backtest accuracy or threshold, points",
                    "parameters": [
                        JOB_ID,
                        *(
                            {"name": name, "in": "query", "required": False, "schema": schema}
                            for name, schema in (
                                ("series_id", {"type": "string"}),
                                ("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
                                ("cursor", {"type": "string"}),
                                ("flagged", {"type": "boolean", "default": False}),
                            )
                        ),
                    ],
                    "responses": {
                        "200": {"description": "{job_id, type, status, progress, series: [...], next_cursor}"},
                        "404": _error("no such forecast job"),
                        "422": _error("a bad query parameter"),
                        **COMMON,
                    },
                }
            },
            "/v1/forecasts/{job_id}/cancel": {
                "post": {
                    "summary": "Cancel a queued forecast job, or a running SageMaker one at its next step",
                    "parameters": [JOB_ID],
                    "responses": {
                        **_job("cancelled (it was queued)"),
                        "202": {"description": "cancel requested: the SageMaker run stops at its next step"},
                        "404": _error("no such forecast job"),
                        "409": _error("neither queued nor a running SageMaker job"),
                        **COMMON,
                    },
                }
            },
            "/healthz": {"get": {"security": [], "responses": {"200": {"description": "alive"}}}},
            "/readyz": {
                "get": {"security": [], "responses": {"200": {"description": "ready"}, "503": _error("not ready")}}
            },
            "/metrics": {"get": {"responses": {"200": text, **COMMON}}},
        },
    }
    return _rewrite_refs(doc)


def _rewrite_refs(node: Any) -> Any:
    """msgspec writes #/$defs/X (in $ref and discriminator mappings); OpenAPI wants #/components/schemas/X."""
    if isinstance(node, dict):
        return {k: _rewrite_refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    if isinstance(node, str) and node.startswith("#/$defs/"):
        return "#/components/schemas/" + node.removeprefix("#/$defs/")
    return node


async def openapi(request: Request) -> Response:
    return json_response(document())


ROUTES = [Route("/openapi.json", openapi, methods=["GET"])]
