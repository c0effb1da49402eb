"""Jobs: the filtered, paginated list; one job with its progress; cancel, retry, artifact download."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import msgspec
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bus.jobstore import BadCursor
from contracts import BY_TYPE, QUEUES, Job
from contracts.job import TERMINAL
from ingress.errors import ApiError
from ingress.routes import artifacts
from ingress.routes import jobs as jobs_api
from ingress.ui.web import SECURITY_HEADERS, error_page, page, render, state_of

PAGE_SIZE = 50
#: quick time ranges offered above the list, as (label, hours back)
RANGES = (("last hour", 1), ("last 24 h", 24), ("last 7 days", 24 * 7))


def _query(params: dict[str, str]) -> str:
    return urlencode({k: v for k, v in params.items() if v})


@page
async def job_list(request: Request) -> Response:
    q = request.query_params
    chosen = {name: q.get(name, "") for name in jobs_api.FILTERS}
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ranges = [
        (label, _query({**chosen, "since": (now - dt.timedelta(hours=h)).isoformat(), "until": ""}))
        for label, h in RANGES
    ]
    context = {
        "statuses": jobs_api.STATUSES,
        "types": sorted(BY_TYPE),
        "queues": QUEUES,
        "chosen": chosen,
        "filters": _query(chosen),
        "ranges": ranges,
        "first": not q.get("cursor"),
        "retried": q.get("retried", "")[:6] if q.get("retried", "").isdigit() else None,
        "bulk_retry": BULK_RETRY,
    }
    try:
        where = jobs_api.read_filter(q)
        jobs, next_cursor = await state_of(request).jobs.list(where, limit=PAGE_SIZE, cursor=q.get("cursor") or None)
    except ApiError as err:
        problem = f"{err.path}: {err.message}"
        return render(request, "jobs.html", err.status, jobs=[], next_cursor=None, error=problem, **context)
    except BadCursor as err:
        return render(request, "jobs.html", 422, jobs=[], next_cursor=None, error=f"cursor: {err}", **context)
    return render(request, "jobs.html", jobs=jobs, next_cursor=next_cursor, error=None, **context)


#: dead jobs the list's "retry" button queues again at once (newest first)
BULK_RETRY = 100


@page
async def retry_dead(request: Request) -> Response:
    form = request.state.form
    try:
        where = jobs_api.read_filter({k: v for k, v in form.items() if k in ("queue", "type", "since", "until")})
    except ApiError as err:
        return error_page(request, err.status, "Bad filter", f"{err.path}: {err.message}")
    retried = await jobs_api.retry_dead(state_of(request), where, BULK_RETRY)
    back = _query({"status": "queued", **{k: form.get(k, "") for k in ("queue", "type", "since", "until")}})
    return RedirectResponse(f"/ui/jobs?{back}&retried={len(retried)}", 303, SECURITY_HEADERS)


async def _job_page(request: Request, status: int = 200, notice: str | None = None) -> Response:
    state = state_of(request)
    job_id = request.path_params["job_id"]
    job = await state.jobs.get(job_id) if len(job_id) <= 64 else None
    if job is None:
        return error_page(request, 404, "Not found", "There is no such job.")
    artifact = await artifacts.artifact_of(state, job.id)
    return render(
        request,
        "job.html",
        status,
        job=job,
        # the job's chain: what caused it (job.caused_by, job.rule) and what its events caused
        followed_by=await state.jobs.followed_by(job.id),
        command=msgspec.json.format(msgspec.json.encode(job.command), indent=2).decode(),
        result=None if job.result is None else msgspec.json.format(msgspec.json.encode(job.result), indent=2).decode(),
        artifact=artifact,
        model_id=_model_of(job),
        notice=notice,
        refresh=None if job.status in TERMINAL else 1000,
    )


def _model_of(job: Job) -> str | None:
    """The model a metrics.compute job computed, for the link to its page."""
    if job.type != "metrics.compute":
        return None
    model_id = msgspec.to_builtins(job.command).get("model_id")
    return str(model_id) if model_id else None


@page
async def job_detail(request: Request) -> Response:
    return await _job_page(request)


async def _act(request: Request, action: str) -> Response:
    try:
        await (jobs_api.cancel_job if action == "cancel" else jobs_api.retry_job)(request)
    except ApiError as err:
        if err.status == 404:
            return error_page(request, 404, "Not found", "There is no such job.")
        return await _job_page(request, err.status, err.message)
    return RedirectResponse(f"/ui/jobs/{request.path_params['job_id']}", 303, SECURITY_HEADERS)


@page
async def cancel(request: Request) -> Response:
    return await _act(request, "cancel")


@page
async def retry(request: Request) -> Response:
    return await _act(request, "retry")


@page
async def artifact(request: Request) -> Response:
    try:
        return await artifacts.get_artifact(request)
    except ApiError as err:
        return error_page(request, err.status, "No artifact", err.message)
