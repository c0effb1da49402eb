"""/v1/rules: rules that turn job events into follow-up commands or notifications.

Every write is checked by bus/rule_check.py (through bus/rule_store.py), as the bus commands
``rule.set`` / ``rule.delete`` are: a refusal is a 422 naming the field and changes nothing. A rule
from the catalog is changed in the catalog only (409).
"""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from bus import rule_check, rule_store
from contracts.command import from_validation_error
from contracts.rules import RulePatch, RuleSpec
from ingress.body import read_json_body
from ingress.errors import ApiError, invalid, json_response
from ingress.query import read_limit, reject_unknown
from ingress.routes.resource import resource
from ingress.routes.schedules import decode_body, patch_fields
from ingress.state import State

MAX_LIST = 500


async def _run(fn, *args):  # type: ignore[no-untyped-def]
    return await anyio.to_thread.run_sync(fn, *args)


def views(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rules as the API shows them, each with its newest firings (webhooks redacted)."""
    firings = rule_store.last_firings([r["name"] for r in rows])
    return [rule_store.view(r, firings[r["name"]]) for r in rows]


def _one(row: dict[str, Any]) -> dict[str, Any]:
    return views([row])[0]


def _not_found(name: str) -> ApiError:
    return ApiError(404, "not_found", {"rule": name})


def _owned(err: rule_store.RuleOwned) -> ApiError:
    return ApiError(409, "conflict", {"rule": err.name, "source": "catalog", "message": str(err)})


async def _write(fn, *args) -> dict[str, Any] | None:  # type: ignore[no-untyped-def]
    """Run a write of the rule store; its refusals as the API answers them."""
    try:
        row = await _run(fn, *args)
    except rule_check.BadRule as err:
        raise invalid(err.path, err.message) from None
    except msgspec.ValidationError as err:
        bad = from_validation_error(err)
        raise invalid(bad.path, bad.message) from None
    except rule_store.RuleOwned as err:
        raise _owned(err) from None
    return None if row is None else await _run(_one, row)


async def create(request: Request) -> Response:
    state: State = request.app.state.switchyard
    spec = decode_body(await read_json_body(request, state.settings.max_body_bytes), RuleSpec)
    view = await _write(rule_store.create, spec)
    if view is None:
        message = "a rule of this name exists: PATCH it, or DELETE it first (rule.set replaces one)"
        raise ApiError(409, "conflict", {"rule": spec.name, "message": message})
    return json_response(view, 201)


async def list_all(request: Request) -> Response:
    q = request.query_params
    reject_unknown(q, {"after", "limit"})
    limit = read_limit(q, 100, MAX_LIST)
    rows = await _run(rule_store.page, q.get("after", ""), limit)
    items = await _run(views, rows)
    return json_response({"items": items, "next_after": items[-1]["name"] if len(items) == limit else None})


async def get_one(request: Request) -> Response:
    name = request.path_params["name"]
    row = await _run(rule_store.get_row, name)
    if row is None:
        raise _not_found(name)
    return json_response(await _run(_one, row))


async def update(request: Request) -> Response:
    state: State = request.app.state.switchyard
    name = request.path_params["name"]
    changes = patch_fields(await read_json_body(request, state.settings.max_body_bytes), RulePatch)
    view = await _write(rule_store.patch, name, changes)
    if view is None:
        raise _not_found(name)
    return json_response(view)


async def delete(request: Request) -> Response:
    name = request.path_params["name"]
    try:
        deleted = await _run(rule_store.delete, name)
    except rule_store.RuleOwned as err:
        raise _owned(err) from None
    if not deleted:
        raise _not_found(name)
    return Response(status_code=204)


ROUTES = [
    resource("/v1/rules", post=create, get=list_all),
    resource("/v1/rules/{name}", get=get_one, patch=update, delete=delete),
]
