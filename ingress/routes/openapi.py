"""GET /openapi.json, built from the contracts (the same schemas the bus validates with)."""

from __future__ import annotations

import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts import QUEUES
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


#: the filters of a job listing besides its status
JOB_FILTERS = [
    {"name": "type", "in": "query", "schema": {"type": "string"}},
    {"name": "queue", "in": "query", "schema": {"type": "string", "enum": list(QUEUES)}},
    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
]
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
                        *JOB_FILTERS,
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
            "/v1/jobs/retry": {
                "post": {
                    "summary": "Run again the newest dead jobs a filter selects (queue, type, creation time)",
                    "parameters": [
                        *JOB_FILTERS,
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                    ],
                    "responses": {
                        "202": {"description": "{retried: n, ids: [job id]}: queued again, newest first"},
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
                    "summary": "Cancel a queued or retrying job at once, or a running one at its next progress report",
                    "parameters": [JOB_ID],
                    "responses": {
                        **_job("cancelled (it was queued or retrying)"),
                        **_job("cancel requested: the running job ends cancelled at its next progress report", "202"),
                        "404": _error("no such job"),
                        "409": _error("already finished"),
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
                    "summary": "A forecast or anomalies job's series: model, selection, accuracy or threshold, points",
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
                        **_job("cancelled (it was queued or retrying)"),
                        "202": {"description": "cancel requested: the run (or job) stops at its next step"},
                        "404": _error("no such forecast job"),
                        "409": _error("already finished"),
                        **COMMON,
                    },
                }
            },
            "/v1/rejected-messages": {
                "get": {
                    "summary": "Messages workers refused to run (poison), newest first; each is in its queue's "
                    "dead-letter queue",
                    "parameters": [
                        {"name": "queue", "in": "query", "schema": {"type": "string", "enum": list(QUEUES)}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                    ],
                    "responses": {
                        "200": {
                            "description": "{items: [RejectedMessage]}",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["items"],
                                        "properties": {
                                            "items": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/RejectedMessage"},
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        "422": _error("bad queue, limit or parameter"),
                        **COMMON,
                    },
                }
            },
            "/healthz": {"get": {"security": [], "responses": {"200": {"description": "alive"}}}},
            "/readyz": {
                "get": {"security": [], "responses": {"200": {"description": "ready"}, "503": _error("not ready")}}
            },
            "/metrics": {"get": {"responses": {"200": text, **COMMON}}},
            **_more_paths(),
        },
    }
    schemas["ScheduleSpec"] = _schedule_schemas(schemas)
    schemas["RejectedMessage"] = _rejected_schema()
    return _rewrite_refs(doc)


def _schedule_schemas(schemas: dict[str, Any]) -> dict[str, Any]:
    import msgspec

    from contracts.schedules import SchedulePatch, ScheduleSpec

    (spec, patch), defs = msgspec.json.schema_components([ScheduleSpec, SchedulePatch], ref_template="#/$defs/{name}")
    schemas.update(defs)
    schemas["SchedulePatch"] = patch
    return spec


def _rejected_schema() -> dict[str, Any]:
    import msgspec

    from bus.rejections import Rejected

    _, defs = msgspec.json.schema_components([Rejected], ref_template="#/$defs/{name}")
    return defs["Rejected"]


def _body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def _query(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "schema": {"type": "string"}} for n in names]


def _more_paths() -> dict[str, Any]:
    """Schedules, model metrics, pipelines and the original services' shapes."""
    ok = {"200": {"description": "ok"}}
    name = [_path("name", "schedule name")]
    model = [_path("model_id", "a UUID")]
    bad = {"404": _error("not found"), "422": _error("invalid; detail.path names the field"), **COMMON}
    return {
        "/v1/schedules": {
            "post": {
                "summary": "Create (201) or atomically replace (200) a schedule",
                "requestBody": _body("ScheduleSpec"),
                "responses": {"201": {"description": "created"}, **ok, **bad},
            },
            "get": {
                "summary": "Schedules with their next fire times",
                "parameters": _query("after", "limit"),
                "responses": {**ok, **bad},
            },
        },
        "/v1/schedules/{name}": {
            "get": {"parameters": name, "responses": {**ok, **bad}},
            "patch": {"parameters": name, "requestBody": _body("SchedulePatch"), "responses": {**ok, **bad}},
            "delete": {"parameters": name, "responses": {"204": {"description": "deleted"}, **bad}},
        },
        "/v1/models/{model_id}/metrics": {
            "get": {
                "summary": "Every metrics computation of a model, newest first",
                "parameters": model + _query("metric", "since", "limit"),
                "responses": {**ok, **bad},
            }
        },
        "/schedule": {
            "post": {
                "summary": "The accuracy service's API: {model_id, cron_expression}; replaces atomically",
                "responses": {**ok, **bad},
            }
        },
        "/schedule/{model_id}": {"delete": {"parameters": model, "responses": {**ok, **bad}}},
        "/results/{model_id}": {
            "get": {
                "summary": "The latest result: {model_id, accuracy, computed_at, n}",
                "parameters": model,
                "responses": {**ok, **bad},
            }
        },
        "/v1/tables/{table}/rows": {
            "put": {
                "summary": "Ingest a JSON array of rows into a catalog table (schema.table); streamed",
                "parameters": [_path("table", "schema.table")],
                "responses": {"202": {"description": "accepted"}, "413": _error("too large"), **bad},
            }
        },
        "/v1/pipelines/{pipeline_id}/runs": {
            "get": {"parameters": [_path("pipeline_id", "pipeline id")], "responses": {**ok, **bad}}
        },
        "/ws": {
            "get": {
                "summary": "The GoodData backend's shape: action=view|create|manage|delete|export",
                "parameters": _query("action", "id", "name", "parent", "wait"),
                "responses": {**ok, "202": {"description": "still running"}, **bad},
            }
        },
        "/provision": {
            "get": {
                "summary": "The GoodData backend's shape: copy source's layout into target",
                "parameters": _query("source", "target", "wait"),
                "responses": {**ok, "202": {"description": "still running"}, **bad},
            }
        },
    }


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
