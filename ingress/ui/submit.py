"""Submit: any command, as a form generated in the browser from the command JSON Schema.

The page posts a type and a JSON object (``body``): the form's script writes its fields into that
textarea, which is also what a browser without the script edits. The server checks it with the API's
own ``accept()``, so the schema only shapes the form; the contract stays the single source of truth.
Other pages link here prefilled: ``/ui/submit?type=X&command=<a JSON object of its fields>``.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from contracts import BY_TYPE, InvalidCommand, decode
from contracts.nesting import MAX_DEPTH, deeper_than
from contracts.schema import command_schema
from ingress.errors import ApiError
from ingress.routes.commands import accept
from ingress.ui.web import SECURITY_HEADERS, FieldError, command_fields, page, render, state_of

DEFAULT_TYPE = "system.noop"
#: the longest prefill a link may carry (servers cap a request line near 16 KiB anyway)
PREFILL_LIMIT = 8 * 1024


def _form(request: Request, status: int = 200, **context: Any) -> Response:
    context.setdefault("type", DEFAULT_TYPE)
    context.setdefault("body", "{}")
    context.setdefault("error", None)
    context.setdefault("notice", None)
    return render(request, "submit.html", status, types=sorted(BY_TYPE), **context)


@functools.cache
def form_schema() -> bytes:
    """What the form is generated from: each type's definition name, and the definitions."""
    parts = command_schema()
    mapping = parts["command"]["discriminator"]["mapping"]
    types = {tag: ref.rsplit("/", 1)[1] for tag, ref in mapping.items()}
    return msgspec.json.encode({"types": types, "$defs": parts["defs"]})


def _pretty(fields: dict[str, Any]) -> str:
    return msgspec.json.format(msgspec.json.encode(fields), indent=2).decode()


def _prefill(chosen: str | None, raw: str | None) -> tuple[str, str, str | None]:
    """(type, body, notice) from a link's query: a bad part is dropped with a notice, never an error."""
    notices: list[str] = []
    fields: dict[str, Any] = {}
    if raw:
        ignored = "The command in the link was ignored:"
        if len(raw) > PREFILL_LIMIT:
            notices.append(f"{ignored} it is longer than {PREFILL_LIMIT} characters.")
        elif deeper_than(raw):
            notices.append(f"{ignored} it nests deeper than {MAX_DEPTH} levels.")
        else:
            try:
                parsed = msgspec.json.decode(raw)
            except msgspec.DecodeError as err:
                notices.append(f"{ignored} it is not JSON ({err}).")
            else:
                if isinstance(parsed, dict):
                    fields = parsed
                else:
                    notices.append(f"{ignored} it is not a JSON object.")
    tagged = fields.pop("type", None)
    if not chosen and isinstance(tagged, str):
        chosen = tagged
    elif tagged is not None and tagged != chosen:
        notices.append(f"The command in the link names another type ({str(tagged)[:64]}): that was dropped.")
    if chosen and chosen not in BY_TYPE:
        notices.append(f"The link was ignored: {chosen[:64]!r} is not a command type.")
        chosen, fields = None, {}
    return chosen or DEFAULT_TYPE, _pretty(fields) if fields else "{}", " ".join(notices) or None


@page
async def submit_form(request: Request) -> Response:
    type_, body, notice = _prefill(request.query_params.get("type"), request.query_params.get("command"))
    return _form(request, type=type_, body=body, notice=notice)


@page
async def submit_schema(request: Request) -> Response:
    return Response(form_schema(), 200, SECURITY_HEADERS, media_type="application/json")


@page
async def submit(request: Request) -> Response:
    form = request.state.form
    type_, body = form.get("type", ""), form.get("body", "").strip() or "{}"
    again = {"type": type_, "body": body}
    if type_ not in BY_TYPE:
        return _form(request, 422, error={"path": "$.type", "message": "choose a command type"}, **again)
    try:
        fields = command_fields(body, type_, "$")
    except FieldError as err:
        return _form(request, err.status, error=err.error, **again)
    try:
        command = decode(msgspec.json.encode({**fields, "type": type_}))
        job, _ = await accept(state_of(request), command, idempotency_key=form.get("idempotency_key") or None)
    except InvalidCommand as err:
        return _form(request, 422, error={"path": err.path, "message": err.message}, **again)
    except ApiError as err:
        return _form(request, err.status, error={"path": err.path, "message": err.message}, **again)
    return RedirectResponse(f"/ui/jobs/{job.id}", 303, SECURITY_HEADERS)
