"""POST /v1/commands: a typed command in, ``202 {id, status, links}`` out."""

from __future__ import annotations

import re

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.errors import UnstorableCommand
from bus.submission import KEY_REUSED, prepare
from contracts import CommandBase, InvalidCommand, Job, decode
from ingress.body import read_json_body
from ingress.errors import ApiError, invalid, json_response
from ingress.state import State

_HEADER_VALUE = re.compile(r"^[\x21-\x7e]{1,255}$")


def links(job_id: str) -> dict[str, str]:
    base = f"/v1/jobs/{job_id}"
    return {"self": base, "cancel": f"{base}/cancel", "retry": f"{base}/retry"}


def header(request: Request, name: str) -> str | None:
    value = request.headers.get(name)
    if value is not None and not _HEADER_VALUE.match(value):
        raise ApiError(400, "invalid_header", {"header": name, "message": "1 to 255 visible ASCII characters"})
    return value


async def accept(
    state: State, command: CommandBase, *, idempotency_key: str | None = None, trace_id: str | None = None
) -> tuple[Job, bool]:
    """Record ``command`` as a job and hand it to the broker: (job, created).

    Every route that turns a request into a command goes through here. A replayed
    idempotency key returns the existing job (created False); reused for another
    command it is a 409.
    """
    submission = prepare(command, idempotency_key=idempotency_key, trace_id=trace_id)
    try:
        job, created, same_command = await state.jobs.insert(submission)
    except UnstorableCommand as err:  # contracts.storable refuses what it knows; this is the rest
        raise invalid("$", f"a value of the command cannot be stored: {err}") from None
    if not same_command:
        raise ApiError(
            409,
            "idempotency_conflict",
            {"job_id": job.id, "message": KEY_REUSED},
        )
    # a created job's message went to the broker with its batch (AsyncJobs.send_created)
    return job, created


async def submit(request: Request) -> Response:
    state: State = request.app.state.switchyard
    body = await read_json_body(request, state.settings.max_body_bytes)
    try:
        command = decode(body)
    except msgspec.DecodeError as err:
        raise ApiError(400, "malformed_json", str(err)) from None
    except InvalidCommand as err:
        raise invalid(err.path, err.message) from None
    job, created = await accept(
        state, command, idempotency_key=header(request, "idempotency-key"), trace_id=header(request, "x-trace-id")
    )
    headers = {"Location": f"/v1/jobs/{job.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return json_response({"id": job.id, "status": job.status, "links": links(job.id)}, 202, headers)


ROUTES = [Route("/v1/commands", submit, methods=["POST"])]
