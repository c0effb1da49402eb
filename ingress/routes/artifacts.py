"""GET /v1/jobs/{id}/artifact: the file a job produced, streamed with its content type."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bus import queries
from bus.artifacts import Artifact, from_row
from ingress.errors import ApiError
from ingress.state import State


async def artifact_of(state: State, job_id: str) -> Artifact | None:
    if len(job_id) > 64:
        return None
    async with state.pool.connection() as conn:
        cur = await conn.execute(queries.load("artifacts")["get"], {"job_id": job_id})
        row = await cur.fetchone()
    return None if row is None else from_row(row)


async def get_artifact(request: Request) -> Response:
    state: State = request.app.state.switchyard
    job_id = request.path_params["job_id"]
    artifact = await artifact_of(state, job_id)
    if artifact is None:
        exists = len(job_id) <= 64 and await state.jobs.get(job_id) is not None
        message = "this job has no artifact (yet)" if exists else "no such job"
        raise ApiError(404, "not_found", {"job_id": job_id[:64], "message": message})
    if not await run_in_threadpool(artifact.exists):
        raise ApiError(404, "not_found", {"job_id": job_id, "message": "the artifact is no longer in the store"})
    headers = {
        "Content-Disposition": f'attachment; filename="{artifact.file_name}"',
        "Content-Length": str(artifact.size_bytes),
        "ETag": f'"{artifact.sha256}"',
    }
    # a sync iterator: Starlette reads it in its thread pool, chunk by chunk
    return StreamingResponse(artifact.chunks(), media_type=artifact.content_type, headers=headers)


ROUTES = [Route("/v1/jobs/{job_id}/artifact", get_artifact, methods=["GET"])]
