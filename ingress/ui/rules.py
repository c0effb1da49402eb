"""Rules: the list with each rule's newest firings, a new rule, enable, disable, delete.

Every change goes through the API's own checks (bus/rule_check.py via bus/rule_store.py): the form
is decoded as the body of ``POST /v1/rules``, so the errors name the same fields
(``$.when.type``, ``$.then.command.seconds``). A catalog rule is shown, not changed: the catalog
is where it changes.
"""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bus import rule_check, rule_store
from contracts import BY_TYPE
from contracts.nesting import MAX_DEPTH, deeper_than
from contracts.rules import RuleSpec
from ingress.errors import ApiError
from ingress.routes.rules import views
from ingress.routes.schedules import decode_body
from ingress.ui.web import SECURITY_HEADERS, FieldError, error_page, page, render, safe_next

PAGE_SIZE = 100
STATUSES = ("succeeded", "failed", "dead", "cancelled")
#: what the type field offers (any command type, a prefix, or every type)
PATTERNS = sorted({"*", *BY_TYPE, *(t.rsplit(".", 1)[0] + ".*" for t in BY_TYPE)} - {"system.notify"})
NEW_DEFAULTS: dict[str, Any] = {
    "name": "",
    "type": "system.noop",
    "status": ["succeeded"],
    "match": "",
    "then": '{"command": {"type": "system.sleep", "seconds": 1}}',
    "enabled": True,
}


def _json(text: str, at: str, default: Any) -> Any:
    if not text.strip():
        return default
    if deeper_than(text):
        raise FieldError(400, at, f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as err:
        raise FieldError(400, at, f"not JSON: {err}") from None


def _new_spec(typed: dict[str, Any]) -> RuleSpec:
    """The form as the body of ``POST /v1/rules``, decoded as the API decodes it."""
    when: dict[str, Any] = {"type": typed["type"], "status": typed["status"]}
    match = _json(typed["match"], "$.when.match", None)
    if match is not None:
        when["match"] = match
    body = {
        "name": typed["name"],
        "when": when,
        "then": _json(typed["then"], "$.then", {}),
        "enabled": typed["enabled"],
    }
    try:
        return decode_body(msgspec.json.encode(body), RuleSpec)
    except ApiError as err:
        raise FieldError(err.status, err.path, err.message) from None


async def _list(request: Request, status: int = 200, new: dict[str, Any] | None = None, error: Any = None) -> Response:
    after = request.query_params.get("after", "")[:255]
    rows = await anyio.to_thread.run_sync(rule_store.page, after, PAGE_SIZE)
    items = await anyio.to_thread.run_sync(views, rows)
    return render(
        request,
        "rules.html",
        status,
        items=items,
        next_after=items[-1]["name"] if len(items) == PAGE_SIZE else None,
        new=new or NEW_DEFAULTS,
        error=error,
        patterns=PATTERNS,
        statuses=STATUSES,
    )


@page
async def rule_list(request: Request) -> Response:
    return await _list(request)


@page
async def create(request: Request) -> Response:
    form = request.state.form
    typed: dict[str, Any] = {key: form.get(key, "").strip() for key in ("name", "type", "match", "then")}
    typed["status"] = [s for s in STATUSES if form.get(f"status-{s}") == "on"]
    typed["enabled"] = form.get("enabled") == "on"
    try:
        spec = _new_spec(typed)
        created = await anyio.to_thread.run_sync(rule_store.create, spec)
    except FieldError as err:
        return await _list(request, err.status, typed, err.error)
    except rule_check.BadRule as err:
        return await _list(request, 422, typed, {"path": err.path, "message": err.message})
    if created is None:
        taken = {"path": "$.name", "message": "a rule of this name exists"}
        return await _list(request, 409, typed, taken)
    return RedirectResponse(f"/ui/rules#rule-{spec.name}", 303, SECURITY_HEADERS)


async def _change(request: Request, change: Any) -> Response:
    name = request.path_params["name"]
    try:
        done = await anyio.to_thread.run_sync(change, name)
    except rule_check.BadRule as err:  # enabling it would close a cycle, or make a chain too long
        return error_page(request, 422, "Refused", f"{err.path}: {err.message}")
    except rule_store.RuleOwned as err:
        return error_page(request, 409, "A catalog rule", str(err))
    if not done:
        return error_page(request, 404, "Not found", "There is no such rule.")
    back = request.state.form.get("next")
    return RedirectResponse(safe_next(back) if back else "/ui/rules", 303, SECURITY_HEADERS)


@page
async def enable(request: Request) -> Response:
    return await _change(request, lambda name: rule_store.patch(name, {"enabled": True}))


@page
async def disable(request: Request) -> Response:
    return await _change(request, lambda name: rule_store.patch(name, {"enabled": False}))


@page
async def delete(request: Request) -> Response:
    return await _change(request, rule_store.delete)
