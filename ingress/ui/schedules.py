"""Schedules: the list; one schedule with its next slots and last runs; create, edit, enable, disable, delete.

Every change goes through the API's own checks (ingress/routes/schedules.py): a new schedule is
decoded as the ScheduleSpec of ``POST /v1/schedules``, an edit is the SchedulePatch of
``PATCH /v1/schedules/{name}``, so the errors name the same fields (``$.cron``, ``$.command.seconds``).
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import Any, get_args

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bus import schedule_store as schedules
from bus import slots
from contracts import type_of
from contracts.schedules import SchedulableCommand, ScheduleSpec
from ingress.errors import ApiError, json_response
from ingress.routes.schedules import apply_patch, decode_body, masked, patch_fields
from ingress.ui import crontext, queries
from ingress.ui.web import (
    SECURITY_HEADERS,
    FieldError,
    command_fields,
    error_page,
    page,
    render,
    safe_next,
    state_of,
    submit_link,
)

PAGE_SIZE = 100
#: the newest runs on a schedule's page
RUNS_SHOWN = 20
POLICIES = ("skip", "fire_once", "catch_up")
COMMAND_TYPES = sorted(type_of(kind) for kind in get_args(SchedulableCommand))
NEW_DEFAULTS = {
    "name": "",
    "cron": "0 3 * * *",
    "timezone": "UTC",
    "type": "system.noop",
    "body": "{}",
    "enabled": True,
    "policy": "skip",
    "catch_up_limit": "10",
}


@functools.cache
def zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def _error_of(err: ApiError) -> dict[str, str]:
    return {"path": err.path, "message": err.message}


def _whole_number(text: str) -> int | str:
    # left as text when it is not a number, so the API's own check names the field
    return int(text) if text.isdigit() else text


def _misfire(policy: str, limit: str) -> dict[str, Any]:
    return {"policy": policy, **({"catch_up_limit": _whole_number(limit)} if limit else {})}


def _preview(cron: str, timezone: str) -> dict[str, Any]:
    try:
        return crontext.preview(cron, timezone)
    except crontext.BadCron as err:
        return {"error": err.message, "path": err.path}


# ---- the list, and a new schedule


async def _list(request: Request, status: int = 200, new: dict[str, Any] | None = None, error: Any = None) -> Response:
    after = request.query_params.get("after", "")[:200]
    rows = await anyio.to_thread.run_sync(schedules.page, after, PAGE_SIZE)
    items = [masked(schedules.view(r)) for r in rows]
    for item in items:
        item["description"] = crontext.describe(item["cron"])
    next_after = items[-1]["name"] if len(items) == PAGE_SIZE else None
    new = new or NEW_DEFAULTS
    return render(
        request,
        "schedules.html",
        status,
        items=items,
        next_after=next_after,
        new=new,
        preview=_preview(new["cron"], new["timezone"]),
        error=error,
        types=COMMAND_TYPES,
        policies=POLICIES,
        zones=zones(),
    )


@page
async def schedule_list(request: Request) -> Response:
    return await _list(request)


def _new_spec(typed: dict[str, Any]) -> ScheduleSpec:
    """The form as the body of ``POST /v1/schedules``, decoded as the API decodes it."""
    fields = command_fields(typed["body"], typed["type"], "$.command")
    body = {
        "name": typed["name"],
        "cron": typed["cron"],
        "timezone": typed["timezone"],
        "command": {**fields, "type": typed["type"]},
        "misfire": _misfire(typed["policy"], typed["catch_up_limit"]),
        "enabled": typed["enabled"],
    }
    try:
        return decode_body(msgspec.json.encode(body), ScheduleSpec)
    except ApiError as err:
        raise FieldError(err.status, **_error_of(err)) from None


@page
async def create(request: Request) -> Response:
    form = request.state.form
    typed: dict[str, Any] = {key: form.get(key, "").strip() for key in NEW_DEFAULTS if key != "enabled"}
    typed["enabled"] = form.get("enabled") == "on"
    try:
        spec = _new_spec(typed)
    except FieldError as err:
        return await _list(request, err.status, typed, err.error)
    # create only: a name already taken is not replaced from this form (the API's POST replaces)
    try:
        created = await anyio.to_thread.run_sync(schedules.create, spec)
    except schedules.BadSchedule as err:  # the deployment's own limits, as the API answers them
        return await _list(request, 422, typed, {"path": err.path, "message": err.message})
    if created is None:
        taken = {"path": "$.name", "message": "a schedule of this name exists; change it on its own page"}
        return await _list(request, 409, typed, taken)
    return RedirectResponse(f"/ui/schedules/{spec.name}", 303, SECURITY_HEADERS)


# ---- one schedule


def _stamp(at: dt.datetime | None) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if at else ""


def _duration(row: dict[str, Any]) -> str:
    if not (row["started_at"] and row["finished_at"]):
        return ""
    seconds = (row["finished_at"] - row["started_at"]).total_seconds()
    return f"{seconds:.2f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def _run(row: dict[str, Any], tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
    try:
        slot = dt.datetime.fromisoformat(row["slot"]) if row["slot"] else None
    except ValueError:
        slot = None
    return {
        "id": row["id"],
        "status": row["status"],
        "attempts": row["attempts"],
        "slot": slot.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z") if slot else row["slot"] or "",
        "slot_utc": _stamp(slot),
        "created": _stamp(row["created_at"]),
        "started": _stamp(row["started_at"]),
        "finished": _stamp(row["finished_at"]),
        "duration": _duration(row),
    }


def _spec_without_secrets(row: dict[str, Any]) -> dict[str, Any]:
    """The schedule as a ``schedule.set`` would carry it, less the alert's webhook URL: a secret
    never sent to the browser, so the operator enters it again."""
    spec = {k: row[k] for k in ("name", "cron", "timezone", "misfire", "enabled", "command")}
    if row.get("alert"):
        spec["alert"] = {k: v for k, v in row["alert"].items() if k != "webhook_url" and v is not None}
    return spec


async def _schedule_page(
    request: Request, status: int = 200, typed: dict[str, str] | None = None, error: dict[str, str] | None = None
) -> Response:
    name = request.path_params["name"]
    row = await anyio.to_thread.run_sync(schedules.get, name) if len(name) <= 255 else None
    if row is None:
        return error_page(request, 404, "Not found", "There is no such schedule.")
    view = masked(schedules.view(row))
    async with state_of(request).pool.connection() as conn:
        cursor = await conn.execute(queries.SCHEDULE_RUNS, {"name": name, "limit": RUNS_SHOWN})
        runs = await cursor.fetchall()
    # a stored cron is valid by construction; _preview keeps the page up should a rule have tightened since
    saved = _preview(row["cron"], row["timezone"])
    form = typed or {
        "cron": row["cron"],
        "timezone": row["timezone"],
        "policy": row["misfire"].get("policy", "skip"),
        "catch_up_limit": str(row["misfire"].get("catch_up_limit", 10)),
    }
    return render(
        request,
        "schedule.html",
        status,
        s=view,
        edit_all=submit_link("schedule.set", schedule=_spec_without_secrets(row)),
        description=saved.get("description"),
        upcoming=saved.get("next", []) if row["enabled"] else [],
        notes=saved.get("notes", []),
        command=msgspec.json.format(msgspec.json.encode(row["command"]), indent=2).decode(),
        runs=[_run(r, slots.zone(row["timezone"])) for r in runs],
        form=form,
        # a page as stored shows what it already worked out for the saved cron
        preview=saved if typed is None else _preview(form["cron"], form["timezone"]),
        error=error,
        policies=POLICIES,
        zones=zones(),
        last_slot=_stamp(row["last_slot"]),
        last_fired=_stamp(row["last_fired_at"]),
        created=_stamp(row["created_at"]),
        updated=_stamp(row["updated_at"]),
    )


@page
async def schedule_page(request: Request) -> Response:
    return await _schedule_page(request)


@page
async def edit(request: Request) -> Response:
    """Cron, zone and misfire policy, changed as ``PATCH /v1/schedules/{name}`` changes them."""
    form = request.state.form
    typed = {key: form.get(key, "").strip() for key in ("cron", "timezone", "policy", "catch_up_limit")}
    body = {
        "cron": typed["cron"],
        "timezone": typed["timezone"],
        "misfire": _misfire(typed["policy"], typed["catch_up_limit"]),
    }
    name = request.path_params["name"]
    try:
        row = await apply_patch(name, patch_fields(msgspec.json.encode(body)))
    except ApiError as err:
        return await _schedule_page(request, err.status, typed, _error_of(err))
    if row is None:
        return error_page(request, 404, "Not found", "There is no such schedule.")
    return RedirectResponse(f"/ui/schedules/{name}", 303, SECURITY_HEADERS)


@page
async def delete(request: Request) -> Response:
    if not await anyio.to_thread.run_sync(schedules.delete, request.path_params["name"]):
        return error_page(request, 404, "Not found", "There is no such schedule.")
    return RedirectResponse("/ui/schedules", 303, SECURITY_HEADERS)


async def _set_enabled(request: Request, enabled: bool) -> Response:
    name = request.path_params["name"]
    try:
        row = await anyio.to_thread.run_sync(schedules.patch, name, {"enabled": enabled})
    except schedules.BadSchedule as err:  # written before a limit it now breaks (MIN_SCHEDULE_INTERVAL_S)
        return error_page(request, 422, "Refused", f"{err.path}: {err.message}")
    if row is None:
        return error_page(request, 404, "Not found", "There is no such schedule.")
    back = request.state.form.get("next")
    return RedirectResponse(safe_next(back) if back else "/ui/schedules", 303, SECURITY_HEADERS)


@page
async def enable(request: Request) -> Response:
    return await _set_enabled(request, True)


@page
async def disable(request: Request) -> Response:
    return await _set_enabled(request, False)


# ---- the live preview under a cron input


@page
async def describe(request: Request) -> Response:
    """``{cron, timezone, description, notes, next: [{local, utc, at}]}``, or 422 ``{error, path}``."""
    cron, timezone = request.query_params.get("cron", ""), request.query_params.get("timezone", "UTC")
    try:
        body = crontext.preview(cron.strip(), timezone.strip())
    except crontext.BadCron as err:
        return json_response({"error": err.message, "path": err.path}, 422, SECURITY_HEADERS)
    return json_response(body, headers=SECURITY_HEADERS)
