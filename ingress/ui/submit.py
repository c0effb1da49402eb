"""Submit: any command, typed by a selector and a JSON object, checked by the API's own ``accept()``."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from contracts import BY_TYPE, InvalidCommand, decode
from ingress.errors import ApiError
from ingress.routes.commands import accept
from ingress.ui.web import SECURITY_HEADERS, page, render, state_of


def _form(request: Request, status: int = 200, **context: Any) -> Response:
    context.setdefault("type", "system.noop")
    context.setdefault("body", "{}")
    context.setdefault("error", None)
    return render(request, "submit.html", status, types=sorted(BY_TYPE), **context)


@page
async def submit_form(request: Request) -> Response:
    chosen = request.query_params.get("type")
    return _form(request, type=chosen if chosen in BY_TYPE else "system.noop")


@page
async def submit(request: Request) -> Response:
    form = request.state.form
    type_, body = form.get("type", ""), form.get("body", "").strip() or "{}"
    again = {"type": type_, "body": body}
    if type_ not in BY_TYPE:
        return _form(request, 422, error={"path": "$.type", "message": "choose a command type"}, **again)
    try:
        fields = msgspec.json.decode(body)
    except msgspec.DecodeError as err:
        return _form(request, 400, error={"path": "$", "message": f"not JSON: {err}"}, **again)
    if not isinstance(fields, dict):
        return _form(request, 422, error={"path": "$", "message": "a JSON object of the command's fields"}, **again)
    if "type" in fields and fields["type"] != type_:
        return _form(request, 422, error={"path": "$.type", "message": "differs from the chosen type"}, **again)
    try:
        command = decode(msgspec.json.encode({**fields, "type": type_}))
        job, _ = await accept(state_of(request), command, idempotency_key=form.get("idempotency_key") or None)
    except InvalidCommand as err:
        return _form(request, 422, error={"path": err.path, "message": err.message}, **again)
    except ApiError as err:
        detail = err.detail if isinstance(err.detail, dict) else {"message": str(err.detail)}
        error = {"path": detail.get("path", "$"), "message": detail.get("message", err.error)}
        return _form(request, err.status, error=error, **again)
    return RedirectResponse(f"/ui/jobs/{job.id}", 303, SECURITY_HEADERS)
