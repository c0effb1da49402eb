"""Jobs: read one, list with filters and a cursor, cancel an open one, retry a dead one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.jobstore import BadCursor, JobFilter
from bus.submission import message_for
from contracts import BY_TYPE, QUEUES, Job, JobStatus
from ingress.errors import ApiError, invalid, json_response
from ingress.query import read_limit, read_time, reject_unknown
from ingress.state import State

MAX_LIMIT = 500
#: dead jobs one bulk retry queues again at most
MAX_RETRY = 1000
STATUSES = [s.value for s in JobStatus]


def _state(request: Request) -> State:
    return request.app.state.switchyard


async def _existing(state: State, job_id: str) -> Job:
    job = await state.jobs.get(job_id) if len(job_id) <= 64 else None
    if job is None:
        raise ApiError(404, "not_found", {"job_id": job_id[:64]})
    return job


async def get_job(request: Request) -> Response:
    state = _state(request)
    job = await _existing(state, request.path_params["job_id"])
    return json_response(msgspec.structs.replace(job, followed_by=await state.jobs.followed_by(job.id)))


FILTERS = ("status", "type", "queue", "since", "until")


def read_filter(q: Mapping[str, str]) -> JobFilter:
    """The filter of a job listing from query parameters; a bad one names itself (422)."""
    status, type_, queue = (q.get(name) or None for name in ("status", "type", "queue"))
    if status is not None and status not in STATUSES:
        raise invalid("status", f"one of {', '.join(STATUSES)}")
    if type_ is not None and type_ not in BY_TYPE:
        raise invalid("type", "not a command type (see /openapi.json)")
    if queue is not None and queue not in QUEUES:
        raise invalid("queue", f"one of {', '.join(QUEUES)}")
    times = {name: read_time(q, name) for name in ("since", "until")}
    if times["since"] and times["until"] and times["since"] >= times["until"]:
        raise invalid("until", "must be later than since")
    return JobFilter(status=status, type=type_, queue=queue, **times)


async def list_jobs(request: Request) -> Response:
    q = request.query_params
    reject_unknown(q, {*FILTERS, "limit", "cursor"})
    where = read_filter(q)
    limit = read_limit(q, 50, MAX_LIMIT)
    try:
        # an empty cursor is the first page, as every empty parameter is one not given
        jobs, cursor = await _state(request).jobs.list(where, limit=limit, cursor=q.get("cursor") or None)
    except BadCursor as err:
        raise invalid("cursor", str(err)) from None
    return json_response({"items": jobs, "next_cursor": cursor})


_ONLY = {
    "cancel": "only a queued, running or retrying (failed) job can be cancelled",
    "retry": "only a dead job can be retried",
}


async def _change(request: Request, name: str) -> tuple[Job, dict[str, Any]]:
    state = _state(request)
    job_id = request.path_params["job_id"]
    moved = await state.jobs.transition_row(name, job_id) if len(job_id) <= 64 else None
    if moved is None:
        current = await _existing(state, job_id)
        raise ApiError(409, "conflict", {"job_id": job_id, "status": current.status, "message": _ONLY[name]})
    return moved


async def cancel_job(request: Request) -> Response:
    """A queued or retrying job is cancelled now (200); a running one gets a cancel request (202),
    and ends ``cancelled`` at its next progress report."""
    job, _ = await _change(request, "cancel")
    return json_response(job, 200 if job.status == JobStatus.CANCELLED else 202)


async def retry_job(request: Request) -> Response:
    job, row = await _change(request, "retry")
    await _state(request).dispatcher.send(message_for(job, row["options"]))
    return json_response(job, 202)


async def retry_dead_jobs(request: Request) -> Response:
    """Retry the newest dead jobs a filter selects (by queue, type, time), at most ``limit``."""
    q = request.query_params
    reject_unknown(q, {*FILTERS, "limit"})
    if q.get("status") not in (None, "", JobStatus.DEAD.value):
        raise invalid("status", "only dead jobs can be retried")
    retried = await retry_dead(_state(request), read_filter(q), read_limit(q, 100, MAX_RETRY))
    return json_response({"retried": len(retried), "ids": [job.id for job in retried]}, 202)


async def retry_dead(state: State, where: JobFilter, limit: int) -> list[Job]:
    """Queue again and send the newest ``limit`` dead jobs ``where`` selects (the API's and the
    dashboard's bulk retry)."""
    retried = await state.jobs.retry_dead(where, limit)
    if retried:
        await state.dispatcher.send_many([message_for(job, row["options"]) for job, row in retried])
    return [job for job, _ in retried]


ROUTES = [
    Route("/v1/jobs", list_jobs, methods=["GET"]),
    Route("/v1/jobs/retry", retry_dead_jobs, methods=["POST"]),
    Route("/v1/jobs/{job_id}", get_job, methods=["GET"]),
    Route("/v1/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
    Route("/v1/jobs/{job_id}/retry", retry_job, methods=["POST"]),
]
