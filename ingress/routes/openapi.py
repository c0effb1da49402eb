"""GET /openapi.json: every route with what it enforces, its schemas built from the contracts.

Each operation lists every status it can answer: the key check's 401/403/429 and a dependency's 503
everywhere; 422 wherever a parameter is read (a bad value, an unknown parameter, or a control
character in the URL: ingress/url_check.py); for a JSON body 400 (malformed_json, empty_body,
too_deep), 408 (the body stopped arriving), 413, 415 and 422. tests/test_fuzz.py holds the server
to it with schemathesis.
"""

from __future__ import annotations

import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts import BY_TYPE, QUEUES, JobStatus
from contracts.base import SCHEMA_VERSION
from ingress.api_schemas import CRON_SCHEMA, ref, request_schemas, response_schemas
from ingress.errors import json_response

#: a path parameter: no control character (ingress/url_check.py)
PATH_TEXT = "^[^\\x00-\\x1f\\x7f]*$"
#: a query value: tab, line feed and carriage return allowed, no other control character
QUERY_TEXT = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*$"
#: Idempotency-Key and X-Trace-Id (ingress/routes/commands.py)
HEADER_VALUE = "^[\\x21-\\x7e]{1,255}$"
UUID = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
IDENTIFIER = "^[A-Za-z0-9_][A-Za-z0-9_.\\-]*$"


def _error(description: str, retry_after: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ref("Error")}}}
    if retry_after:
        answer["headers"] = {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    return answer


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema or {"type": "object"}}}}


AUTH = {
    "401": _error("no API key"),
    "403": _error("a wrong API key"),
    "429": _error("too many wrong API keys from this address (API_KEY_FAILURE_LIMIT): wait Retry-After", True),
    "503": _error("a dependency (Postgres, Redis, the broker) is down: retry after Retry-After"),
}
BAD_PARAMETER = {"422": _error("a bad parameter, named by detail.path (also a control character in the URL)")}
NOT_FOUND = {"404": _error("not found")}
BODY = {
    "400": _error("malformed_json, empty_body (none sent) or too_deep (nested deeper than 64 levels)"),
    "408": _error("the body stopped arriving for BODY_READ_TIMEOUT_S; the connection is closed"),
    "413": _error("the body is over the limit (MAX_BODY_BYTES)"),
    "415": _error("the body is not application/json"),
    "422": _error("the body does not match its schema, or a rule between its fields; detail.path names the field"),
}


def _text(pattern: str = QUERY_TEXT, **more: Any) -> dict[str, Any]:
    return {"type": "string", "pattern": pattern, **more}


def _or_empty(schema: dict[str, Any]) -> dict[str, Any]:
    """A query value that may also be empty: the server takes ``name=`` as not given."""
    return {"anyOf": [schema, {"type": "string", "maxLength": 0}]}


def _path(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or _text(PATH_TEXT, minLength=1),
    }


def _query(name: str, schema: dict[str, Any], description: str = "", required: bool = False) -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "schema": schema, "required": required}
    return parameter | ({"description": description} if description else {})


def _limit(most: int, default: int) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": 1, "maximum": most, "default": default}
    return _query("limit", schema, f"page size, 1 to {most}")


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "description": description + "; 400 invalid_header otherwise",
        "schema": {"type": "string", "pattern": HEADER_VALUE},
    }


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _link(operation: str, parameter: str, expression: str) -> dict[str, Any]:
    return {"operationId": operation, "parameters": {parameter: expression}}


CURSOR = "the next_cursor of the previous page, as it was returned"
JOB_ID = _path("job_id", "a job's id", _text(PATH_TEXT, minLength=1, maxLength=64))
MODEL_ID = _path("model_id", "a model's UUID", {"type": "string", "format": "uuid", "pattern": UUID})
SCHEDULE_NAME = _path(
    "name", "a schedule's name", {"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDENTIFIER}
)
RULE_NAME = _path("name", "a rule's name", {"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDENTIFIER})
IDEMPOTENCY = _header("Idempotency-Key", "the same key and command answer the same job (1 to 255 visible ASCII)")
TRACE = _header("X-Trace-Id", "carried through the job's messages (1 to 255 visible ASCII)")
JOB_FILTERS = [
    _query("type", _or_empty({"type": "string", "enum": sorted(BY_TYPE)}), "a command type"),
    _query("queue", _or_empty({"type": "string", "enum": list(QUEUES)})),
    _query("since", _or_empty({"type": "string", "format": "date-time"}), "created at or after (ISO 8601)"),
    _query("until", _or_empty({"type": "string", "format": "date-time"}), "created before; later than since"),
]
JOB_LINKS = {
    "GetJob": _link("getJob", "job_id", "$response.body#/id"),
    "CancelJob": _link("cancelJob", "job_id", "$response.body#/id"),
    "RetryJob": _link("retryJob", "job_id", "$response.body#/id"),
}
SCHEDULE_LINKS = {
    "GetSchedule": _link("getSchedule", "name", "$response.body#/name"),
    "PatchSchedule": _link("patchSchedule", "name", "$response.body#/name"),
    "DeleteSchedule": _link("deleteSchedule", "name", "$response.body#/name"),
}

RULE_LINKS = {
    "GetRule": _link("getRule", "name", "$response.body#/name"),
    "PatchRule": _link("patchRule", "name", "$response.body#/name"),
    "DeleteRule": _link("deleteRule", "name", "$response.body#/name"),
}


def _job(description: str, links: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = _json(description, ref("Job"))
    return answer | ({"links": links} if links else {})


def _jobs() -> dict[str, Any]:
    listing = {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {"items": {"type": "array", "items": ref("Job")}, "next_cursor": {"type": ["string", "null"]}},
    }
    retried = {
        "type": "object",
        "required": ["retried", "ids"],
        "properties": {"retried": {"type": "integer"}, "ids": {"type": "array", "items": {"type": "string"}}},
    }
    return {
        "/v1/commands": {
            "post": {
                "operationId": "submitCommand",
                "summary": "Submit a command; it runs on the pool its type routes to",
                "parameters": [IDEMPOTENCY, TRACE],
                "requestBody": _body(ref("Command")),
                "responses": {
                    "202": _json("accepted: recorded and never lost", ref("Accepted")) | {"links": JOB_LINKS},
                    **BODY,
                    "400": _error("malformed_json, empty_body, too_deep, or invalid_header"),
                    "409": _error("Idempotency-Key reused for another command"),
                    **AUTH,
                },
            }
        },
        "/v1/jobs": {
            "get": {
                "operationId": "listJobs",
                "summary": "List jobs, newest first",
                "parameters": [
                    _query("status", _or_empty({"type": "string", "enum": [s.value for s in JobStatus]})),
                    *JOB_FILTERS,
                    _limit(500, 50),
                    _query("cursor", _text(), CURSOR),
                ],
                "responses": {"200": _json("a page of jobs", listing), **BAD_PARAMETER, **AUTH},
            }
        },
        "/v1/jobs/retry": {
            "post": {
                "operationId": "retryDeadJobs",
                "summary": "Run again the newest dead jobs a filter selects (queue, type, creation time)",
                "parameters": [
                    _query("status", _or_empty({"type": "string", "enum": ["dead"]}), "only dead jobs are retried"),
                    *JOB_FILTERS,
                    _limit(1000, 100),
                ],
                "responses": {"202": _json("queued again, newest first", retried), **BAD_PARAMETER, **AUTH},
            }
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "operationId": "getJob",
                "parameters": [JOB_ID],
                "responses": {"200": _job("the job"), **NOT_FOUND, **BAD_PARAMETER, **AUTH},
            }
        },
        "/v1/jobs/{job_id}/cancel": {
            "post": {
                "operationId": "cancelJob",
                "summary": "Cancel a queued or retrying job at once, or a running one at its next progress report",
                "parameters": [JOB_ID],
                "responses": {
                    "200": _job("cancelled (it was queued or retrying)"),
                    "202": _job("cancel requested: the running job ends cancelled at its next progress report"),
                    **NOT_FOUND,
                    "409": _error("already finished"),
                    **BAD_PARAMETER,
                    **AUTH,
                },
            }
        },
        "/v1/jobs/{job_id}/retry": {
            "post": {
                "operationId": "retryJob",
                "summary": "Run a dead job again",
                "parameters": [JOB_ID],
                "responses": {
                    "202": _job("queued again"),
                    **NOT_FOUND,
                    "409": _error("not dead"),
                    **BAD_PARAMETER,
                    **AUTH,
                },
            }
        },
        "/v1/jobs/{job_id}/artifact": {
            "get": {
                "operationId": "getArtifact",
                "summary": "The file the job produced (an export, a backup), streamed with its content type",
                "parameters": [JOB_ID],
                "responses": {
                    "200": {"description": "the file; Content-Disposition names it"},
                    "404": _error("no such job, or it has no artifact"),
                    **BAD_PARAMETER,
                    **AUTH,
                },
            }
        },
        "/v1/rejected-messages": {
            "get": {
                "operationId": "listRejectedMessages",
                "summary": "Messages workers refused to run (poison), newest first; each is in its queue's "
                "dead-letter queue",
                "parameters": [_query("queue", _or_empty({"type": "string", "enum": list(QUEUES)})), _limit(500, 50)],
                "responses": {
                    "200": _json(
                        "{items: [RejectedMessage]}",
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {"items": {"type": "array", "items": ref("RejectedMessage")}},
                        },
                    ),
                    **BAD_PARAMETER,
                    **AUTH,
                },
            }
        },
    }


def _forecasts() -> dict[str, Any]:
    return {
        "/v1/forecasts/{job_id}": {
            "get": {
                "operationId": "getForecast",
                "summary": "A forecast or anomalies job's series: model, selection, accuracy or threshold, points",
                "parameters": [
                    JOB_ID,
                    _query("series_id", _text()),
                    _limit(1000, 100),
                    _query("cursor", _text(), CURSOR),
                    _query("flagged", {"type": "boolean", "default": False}, "anomalies: only flagged points"),
                ],
                "responses": {
                    "200": _json("{job_id, type, status, progress, series: [...], next_cursor}"),
                    "404": _error("no such forecast job"),
                    **BAD_PARAMETER,
                    **AUTH,
                },
            }
        },
        "/v1/forecasts/{job_id}/cancel": {
            "post": {
                "operationId": "cancelForecast",
                "summary": "Cancel a queued forecast job, or a running SageMaker one at its next step",
                "parameters": [JOB_ID],
                "responses": {
                    "200": _job("cancelled (it was queued or retrying)"),
                    "202": _json("cancel requested: the run (or job) stops at its next step"),
                    "404": _error("no such forecast job"),
                    "409": _error("already finished"),
                    **BAD_PARAMETER,
                    **AUTH,
                },
            }
        },
    }


def _schedules() -> dict[str, Any]:
    view = _json("the schedule with its next fire times", {"type": "object", "required": ["name", "cron"]})
    listing = {
        "type": "object",
        "required": ["items", "next_after"],
        "properties": {"items": {"type": "array"}, "next_after": {"type": ["string", "null"]}},
    }
    return {
        "/v1/schedules": {
            "post": {
                "operationId": "setSchedule",
                "summary": "Create (201) or atomically replace (200) a schedule",
                "requestBody": _body(ref("ScheduleSpec")),
                "responses": {
                    "201": view | {"links": SCHEDULE_LINKS},
                    "200": view | {"links": SCHEDULE_LINKS},
                    **BODY,
                    **AUTH,
                },
            },
            "get": {
                "operationId": "listSchedules",
                "summary": "Schedules with their next fire times, by name",
                "parameters": [_query("after", _text(), "the next_after of the previous page"), _limit(500, 100)],
                "responses": {"200": _json("a page of schedules", listing), **BAD_PARAMETER, **AUTH},
            },
        },
        "/v1/schedules/{name}": {
            "get": {
                "operationId": "getSchedule",
                "parameters": [SCHEDULE_NAME],
                "responses": {"200": view, **NOT_FOUND, **BAD_PARAMETER, **AUTH},
            },
            "patch": {
                "operationId": "patchSchedule",
                "summary": "Change the fields given; the schedule is checked whole (an alert needs metrics.compute)",
                "parameters": [SCHEDULE_NAME],
                "requestBody": _body(ref("SchedulePatch")),
                "responses": {"200": view, **NOT_FOUND, **BODY, **AUTH},
            },
            "delete": {
                "operationId": "deleteSchedule",
                "parameters": [SCHEDULE_NAME],
                "responses": {"204": {"description": "deleted"}, **NOT_FOUND, **BAD_PARAMETER, **AUTH},
            },
        },
    }


def _rules() -> dict[str, Any]:
    view = _json("the rule (a webhook shown by its host only) with its newest firings", ref("Rule"))
    listing = {
        "type": "object",
        "required": ["items", "next_after"],
        "properties": {"items": {"type": "array", "items": ref("Rule")}, "next_after": {"type": ["string", "null"]}},
    }
    catalog = _error("the rule comes from the catalog: change it there")
    return {
        "/v1/rules": {
            "post": {
                "operationId": "createRule",
                "summary": "Create a rule: when a job event matches, submit a follow-up command or a notification",
                "requestBody": _body(ref("RuleBody")),
                "responses": {
                    "201": view | {"links": RULE_LINKS},
                    "409": _error("a rule of this name exists"),
                    **BODY,
                    **AUTH,
                },
            },
            "get": {
                "operationId": "listRules",
                "summary": "Rules by name, each with its newest firings",
                "parameters": [_query("after", _text(), "the next_after of the previous page"), _limit(500, 100)],
                "responses": {"200": _json("a page of rules", listing), **BAD_PARAMETER, **AUTH},
            },
        },
        "/v1/rules/{name}": {
            "get": {
                "operationId": "getRule",
                "parameters": [RULE_NAME],
                "responses": {"200": view, **NOT_FOUND, **BAD_PARAMETER, **AUTH},
            },
            "patch": {
                "operationId": "patchRule",
                "summary": "Change the fields given; the rule is checked whole, as a new one is",
                "parameters": [RULE_NAME],
                "requestBody": _body(ref("RulePatch")),
                "responses": {"200": view, **NOT_FOUND, "409": catalog, **BODY, **AUTH},
            },
            "delete": {
                "operationId": "deleteRule",
                "parameters": [RULE_NAME],
                "responses": {
                    "204": {"description": "deleted"},
                    **NOT_FOUND,
                    "409": catalog,
                    **BAD_PARAMETER,
                    **AUTH,
                },
            },
        },
    }


def _models() -> dict[str, Any]:
    from contracts.metrics import MetricName

    metric_names = list(MetricName.__args__)  # type: ignore[attr-defined]
    body = {
        "type": "object",
        "required": ["model_id", "cron_expression"],
        "additionalProperties": False,
        "properties": {
            "model_id": {"type": "string", "format": "uuid", "pattern": UUID},
            "cron_expression": CRON_SCHEMA,
        },
    }
    return {
        "/v1/models/{model_id}/metrics": {
            "get": {
                "operationId": "modelMetrics",
                "summary": "Every metrics computation of a model, newest first",
                "parameters": [
                    MODEL_ID,
                    _query("metric", {"type": "string", "enum": metric_names}),
                    _query("since", _or_empty({"type": "string", "format": "date-time"})),
                    _limit(10_000, 1000),
                ],
                "responses": {"200": _json("{model_id, items}"), **BAD_PARAMETER, **AUTH},
            }
        },
        "/schedule": {
            "post": {
                "operationId": "scheduleModelMetrics",
                "summary": "The accuracy service's API: {model_id, cron_expression}; replaces atomically",
                "requestBody": _body(body),
                "responses": {"200": _json("scheduled"), **BODY, **AUTH},
            }
        },
        "/schedule/{model_id}": {
            "delete": {
                "operationId": "unscheduleModelMetrics",
                "parameters": [MODEL_ID],
                "responses": {"200": _json("deleted"), **NOT_FOUND, **BAD_PARAMETER, **AUTH},
            }
        },
        "/results/{model_id}": {
            "get": {
                "operationId": "modelResult",
                "summary": "The latest result: {model_id, accuracy, computed_at, n}",
                "parameters": [MODEL_ID],
                "responses": {"200": _json("the latest result"), **NOT_FOUND, **BAD_PARAMETER, **AUTH},
            }
        },
    }


def _pipelines() -> dict[str, Any]:
    rows = {"type": "array", "minItems": 1, "items": ref("StorableObject"), "description": "rows of the table"}
    return {
        "/v1/tables/{table}/rows": {
            "put": {
                "operationId": "putRows",
                "summary": "Ingest a JSON array of rows into a catalog table (schema.table); streamed",
                "parameters": [
                    _path(
                        "table",
                        "schema.table of the catalog",
                        {"type": "string", "pattern": "^[a-z_][a-z0-9_]{0,62}\\.[a-z_][a-z0-9_]{0,62}$"},
                    ),
                    IDEMPOTENCY,
                    TRACE,
                ],
                "requestBody": _body(rows),
                "responses": {
                    "202": _json("accepted: a pipelines.ingest job", ref("Accepted")) | {"links": JOB_LINKS},
                    "404": _error("no such table in the catalog"),
                    **BODY,
                    "400": _error("malformed_json or invalid_header"),
                    "413": _error("the body is over INGEST_MAX_BODY_BYTES"),
                    "422": _error("a value does not fit its column (every row and column named), or no rows"),
                    "409": _error("Idempotency-Key reused for another command"),
                    **AUTH,
                    "503": _error("a dependency is down, or the catalog is invalid"),
                },
            }
        },
        "/v1/pipelines/{pipeline_id}/runs": {
            "get": {
                "operationId": "pipelineRuns",
                "parameters": [
                    _path(
                        "pipeline_id",
                        "a catalog pipeline",
                        {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.\\-]{0,254}$"},
                    ),
                    _limit(200, 20),
                ],
                "responses": {
                    "200": _json("{pipeline_id, items}"),
                    "404": _error("no such pipeline"),
                    **BAD_PARAMETER,
                    **AUTH,
                    "503": _error("a dependency is down, or the catalog is invalid"),
                },
            }
        },
    }


def _gooddata() -> dict[str, Any]:
    identifier = _or_empty({"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDENTIFIER})
    name = _or_empty({"type": "string", "minLength": 1, "maxLength": 255, "pattern": QUERY_TEXT})
    wait = _or_empty({"type": "number", "minimum": 0, "maximum": 30, "default": 10})
    flag = {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no", ""]}
    answered = {
        "200": _json("done: the original service's answer"),
        "202": _json("still running: poll the job", ref("Accepted")),
        "409": _error("Idempotency-Key reused for another command"),
        "422": _error("a bad parameter (detail.path names it), or the command failed (command_failed)"),
        **AUTH,
    }
    return {
        "/ws": {
            "get": {
                "operationId": "gooddataWorkspaces",
                "summary": "The GoodData backend's shape: action=view|create|manage|delete|export. id is "
                "required for every action but view, name for manage",
                "parameters": [
                    _query(
                        "action",
                        _or_empty({"type": "string", "enum": ["view", "create", "manage", "delete", "export"]}),
                    ),
                    _query("id", identifier),
                    _query("name", name),
                    _query("parent", identifier),
                    _query("cascade", flag),
                    _query("format", _or_empty({"type": "string", "enum": ["json", "yaml"]})),
                    _query("wait", wait, "seconds to wait for the job, 0 to 30"),
                    IDEMPOTENCY,
                ],
                "responses": {**answered, "400": _error("invalid_header"), "404": _error("the export has no artifact")},
            }
        },
        "/provision": {
            "get": {
                "operationId": "gooddataProvision",
                "summary": "The GoodData backend's shape: copy source's layout into target (not the source)",
                "parameters": [
                    _query("source", identifier["anyOf"][0], required=True),
                    _query("target", identifier["anyOf"][0], required=True),
                    _query("name", name),
                    _query("parent", identifier),
                    _query("wait", wait, "seconds to wait for the job, 0 to 30"),
                    IDEMPOTENCY,
                ],
                "responses": {**answered, "400": _error("invalid_header")},
            }
        },
    }


def _operations() -> dict[str, Any]:
    ok = _json("ok")
    ready = {"200": ok, "503": _error("not ready: detail.checks names what is down")}
    return {
        **_jobs(),
        **_forecasts(),
        **_schedules(),
        **_rules(),
        **_models(),
        **_pipelines(),
        **_gooddata(),
        "/healthz": {"get": {"operationId": "healthz", "security": [], "responses": {"200": ok}}},
        "/readyz": {"get": {"operationId": "readyz", "security": [], "responses": ready}},
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "responses": {"200": {"description": "Prometheus' text format", "content": {"text/plain": {}}}, **AUTH},
            }
        },
    }


@functools.cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Switchyard", "version": f"schema {SCHEMA_VERSION}"},
        "components": {
            "schemas": {**request_schemas(), **response_schemas()},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": _operations(),
    }


async def openapi(request: Request) -> Response:
    return json_response(document())


ROUTES = [Route("/openapi.json", openapi, methods=["GET"])]
