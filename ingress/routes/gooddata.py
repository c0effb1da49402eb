"""The original GoodData service's HTTP shapes, for its frontend.

``GET /ws?action=view|create|manage|delete|export&id=&name=&parent=`` and
``GET /provision?source=&target=`` submit the matching command (through ``accept``,
like POST /v1/commands), then wait up to ``wait`` seconds (default 10, at most 30) for
the job: done, they answer like the original (the tree, the SDK outcome, the exported
document); still running, ``202 {id, status, links}`` to poll. A command that failed is
a 422 with GoodData's message and the job id. The API key is required as everywhere,
so these GETs that change things are no longer open to anyone.

Unlike the original, nothing defaults to a configured workspace: ``id`` (``source``,
``target``) must be given for every action but ``view``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts import InvalidCommand, Job, JobStatus, convert
from ingress.errors import ApiError, invalid, json_response
from ingress.query import reject_unknown
from ingress.routes.artifacts import artifact_of
from ingress.routes.commands import accept, header, links
from ingress.state import State

DEFAULT_WAIT_S = 10.0
MAX_WAIT_S = 30.0
ACTIONS = ("view", "create", "manage", "delete", "export")
#: command field -> the original's query parameter, to name the parameter in a 422
_PARAMS = {
    "workspace_id": "id",
    "name": "name",
    "parent_id": "parent",
    "cascade": "cascade",
    "format": "format",
    "source_id": "source",
    "target_id": "target",
    "target_name": "name",
    "target_parent_id": "parent",
}


def _query(request: Request, allowed: set[str]) -> dict[str, str]:
    q = request.query_params
    reject_unknown(q, {*allowed, "wait"})
    return {k: v for k, v in q.items() if v != ""}


def _wait(q: dict[str, str]) -> float:
    raw = q.get("wait", str(DEFAULT_WAIT_S))
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_WAIT_S:
        raise invalid("wait", f"seconds from 0 to {MAX_WAIT_S:g}")
    return value


def _flag(q: dict[str, str], name: str) -> bool:
    value = q.get(name, "false").lower()
    if value not in {"true", "false", "1", "0", "yes", "no"}:
        raise invalid(name, "true or false")
    return value in {"true", "1", "yes"}


def _command(fields: dict[str, Any]) -> Any:
    try:
        return convert({k: v for k, v in fields.items() if v is not None})
    except InvalidCommand as err:
        field = err.path.removeprefix("$.").split(".")[0].split("[")[0]
        raise invalid(_PARAMS.get(field, err.path), err.message) from None


async def _settle(state: State, job: Job, wait_s: float) -> Job:
    deadline = time.monotonic() + wait_s
    delay = 0.02
    while not job.status.terminal and time.monotonic() < deadline:
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.25)
        job = await state.jobs.get(job.id) or job
    return job


async def _answer(request: Request, fields: dict[str, Any], wait_s: float, action: str) -> Response:
    state: State = request.app.state.switchyard
    job, _ = await accept(state, _command(fields), idempotency_key=header(request, "idempotency-key"))
    job = await _settle(state, job, wait_s)
    if not job.status.terminal:
        body = {"id": job.id, "status": job.status, "links": links(job.id)}
        return json_response(body, 202, {"Location": f"/v1/jobs/{job.id}"})
    if job.status is not JobStatus.SUCCEEDED:
        message = job.error.message if job.error else job.status.value
        raise ApiError(422, "command_failed", {"job_id": job.id, "status": job.status, "message": message})
    result = job.result or {}
    if action == "view":
        roots = result.get("workspaces", [])
        return json_response(roots[0] if fields.get("workspace_id") and roots else roots)
    if action == "export":
        artifact = await artifact_of(state, job.id)
        if artifact is None:
            raise ApiError(404, "not_found", {"job_id": job.id, "message": "the export has no artifact"})
        return Response(await run_in_threadpool(artifact.read), media_type=artifact.content_type)
    return json_response({**result, "job_id": job.id})


async def ws(request: Request) -> Response:
    q = _query(request, {"action", "id", "name", "parent", "cascade", "format"})
    action = q.get("action", "view")
    if action not in ACTIONS:
        raise invalid("action", f"one of {', '.join(ACTIONS)}")
    workspace = q.get("id")
    if action == "view":
        fields: dict[str, Any] = {"type": "gooddata.workspace.view", "workspace_id": workspace}
    elif workspace is None:
        raise invalid("id", f"required for action={action}")
    elif action == "create":
        fields = {"type": "gooddata.workspace.create", "workspace_id": workspace, "name": q.get("name")}
        fields["parent_id"] = q.get("parent")
    elif action == "manage":
        if "name" not in q:
            raise invalid("name", "required for action=manage (the new name)")
        fields = {"type": "gooddata.workspace.rename", "workspace_id": workspace, "name": q["name"]}
    elif action == "delete":
        fields = {"type": "gooddata.workspace.delete", "workspace_id": workspace, "cascade": _flag(q, "cascade")}
    else:  # export: the original chose YAML with name=yaml, JSON otherwise
        fmt = q.get("format") or ("yaml" if q.get("name") == "yaml" else "json")
        fields = {"type": "gooddata.workspace.export", "workspace_id": workspace, "format": fmt}
    return await _answer(request, fields, _wait(q), action)


async def provision(request: Request) -> Response:
    q = _query(request, {"source", "target", "name", "parent"})
    for name in ("source", "target"):
        if name not in q:
            raise invalid(name, "required")
    fields = {
        "type": "gooddata.workspace.provision",
        "source_id": q["source"],
        "target_id": q["target"],
        "target_name": q.get("name"),
        "target_parent_id": q.get("parent"),
    }
    return await _answer(request, fields, _wait(q), "provision")


ROUTES = [Route("/ws", ws, methods=["GET"]), Route("/provision", provision, methods=["GET"])]
