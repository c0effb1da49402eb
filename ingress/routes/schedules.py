"""/v1/schedules: cron schedules that emit any command of any pool."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from bus import outbound
from bus import schedule_store as schedules
from contracts import storable, whole
from contracts.command import from_validation_error
from contracts.schedules import SchedulePatch, ScheduleSpec
from ingress.body import read_json_body
from ingress.errors import ApiError, invalid, json_response
from ingress.query import read_limit
from ingress.routes.resource import resource
from ingress.state import State

MAX_LIST = 500


def decode_body(raw: bytes, kind: type) -> Any:
    try:
        try:
            value = msgspec.json.decode(raw, type=kind)
        except msgspec.ValidationError as err:
            if not whole.float_for_int(err):
                raise
            value = msgspec.convert(whole.as_integers(msgspec.json.decode(raw)), kind)  # 2.0 as an integer
        storable.check(value)  # a schedule's command is stored, then emitted as a job's
        return value
    except msgspec.ValidationError as err:
        bad = from_validation_error(err)
        raise invalid(bad.path, bad.message) from None
    except storable.Unstorable as err:
        raise invalid(err.path, err.message) from None
    except msgspec.DecodeError as err:
        raise ApiError(400, "malformed_json", str(err)) from None


def masked(view: dict[str, Any]) -> dict[str, Any]:
    """Webhook URLs are secrets (Slack's are): the API shows only where they point."""
    alert = view.get("alert")
    if alert and alert.get("webhook_url"):
        view["alert"] = {**alert, "webhook_url": outbound.redacted(alert["webhook_url"])}
    return view


async def _run(fn, *args):  # type: ignore[no-untyped-def]
    return await anyio.to_thread.run_sync(fn, *args)


async def create(request: Request) -> Response:
    state: State = request.app.state.switchyard
    spec = decode_body(await read_json_body(request, state.settings.max_body_bytes), ScheduleSpec)
    try:
        row = await _run(schedules.set_schedule, spec)
    except schedules.BadSchedule as err:
        raise invalid(err.path, err.message) from None
    return json_response(masked(schedules.view(row)), 201 if row["created"] else 200)


def patch_fields(raw: bytes, kind: type = SchedulePatch) -> dict[str, Any]:
    """The fields a PATCH body sets, each checked as ``kind`` types it; the others stay as they are."""
    changes = decode_body(raw, kind)
    given = msgspec.json.decode(raw)
    return {k: v for k, v in msgspec.to_builtins(changes).items() if k in given}


async def apply_patch(name: str, given: dict[str, Any]) -> dict[str, Any] | None:
    """Change the schedule ``name`` (None: there is none); ApiError 422 names the field that makes it invalid."""
    try:
        return await _run(schedules.patch, name, given)
    except msgspec.ValidationError as err:
        bad = from_validation_error(err)
        raise invalid(bad.path, bad.message) from None
    except schedules.BadSchedule as err:
        raise invalid(err.path, err.message) from None


async def update(request: Request) -> Response:
    state: State = request.app.state.switchyard
    raw = await read_json_body(request, state.settings.max_body_bytes)
    row = await apply_patch(request.path_params["name"], patch_fields(raw))
    if row is None:
        raise ApiError(404, "not_found", {"schedule": request.path_params["name"]})
    return json_response(masked(schedules.view(row)))


async def get_one(request: Request) -> Response:
    row = await _run(schedules.get, request.path_params["name"])
    if row is None:
        raise ApiError(404, "not_found", {"schedule": request.path_params["name"]})
    return json_response(masked(schedules.view(row)))


async def list_all(request: Request) -> Response:
    q = request.query_params
    limit = read_limit(q, 100, MAX_LIST)
    rows = await _run(schedules.page, q.get("after", ""), limit)
    items = [masked(schedules.view(r)) for r in rows]
    return json_response({"items": items, "next_after": items[-1]["name"] if len(items) == limit else None})


async def delete(request: Request) -> Response:
    if not await _run(schedules.delete, request.path_params["name"]):
        raise ApiError(404, "not_found", {"schedule": request.path_params["name"]})
    return Response(status_code=204)


ROUTES = [
    resource("/v1/schedules", post=create, get=list_all),
    resource("/v1/schedules/{name}", get=get_one, patch=update, delete=delete),
]
