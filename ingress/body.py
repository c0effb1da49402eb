"""Reading a request body with a size cap (413), a JSON content type (415) and a nesting cap (400)."""

from __future__ import annotations

from starlette.requests import Request

from contracts.nesting import MAX_DEPTH, deeper_than
from ingress.errors import ApiError


async def read_json_body(request: Request, limit: int) -> bytes:
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", f"send the command as application/json, not {ctype!r}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", {"limit_bytes": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", {"limit_bytes": limit})
        chunks.append(chunk)
    if size == 0:
        raise ApiError(400, "empty_body", "the request has no body; send a command as JSON")
    body = b"".join(chunks)
    if deeper_than(body):
        # decoders recurse: refused before any of them sees it
        raise ApiError(400, "too_deep", {"path": "$", "message": f"JSON nested deeper than {MAX_DEPTH} levels"})
    return body
