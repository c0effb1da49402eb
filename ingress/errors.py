"""Every error the API answers is JSON ``{error, detail}`` with the right status."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import psycopg
import redis
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from bus.jobstore import unavailable

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers

    @property
    def path(self) -> str:
        """The field the error names (``$.cron``, ``since``), ``$`` when it names none."""
        return str(self.detail.get("path", "$")) if isinstance(self.detail, dict) else "$"

    @property
    def message(self) -> str:
        """The detail in words, for a page that shows it beside the field."""
        if isinstance(self.detail, dict):
            return str(self.detail.get("message") or self.error)
        return str(self.detail) if self.detail else self.error


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(body), status_code=status, headers=headers, media_type="application/json")


def error_response(status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": error, "detail": detail}, status, headers)


def invalid(path: str, message: str) -> ApiError:
    """422 naming the offending field by its JSON path (``$.args.x``) or parameter name."""
    return ApiError(422, "invalid", {"path": path, "message": message})


def dependency_down(name: str) -> ApiError:
    return ApiError(
        503,
        "unavailable",
        {"dependency": name, "message": f"{name} is unreachable; try again shortly"},
        {"Retry-After": "1"},
    )


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.error, exc.detail, exc.headers)


_HTTP_NAMES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    name = _HTTP_NAMES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, name, exc.detail, dict(exc.headers or {}))


async def on_unavailable(request: Request, exc: Exception) -> Response:
    """A dependency is down (or dropped our connection): 503 with Retry-After, and one log line."""
    name = "redis" if "redis" in type(exc).__module__ else "postgres"
    log.warning("%s unavailable on %s %s: %s", name, request.method, request.url.path, type(exc).__name__)
    err = dependency_down(name)
    return error_response(err.status, err.error, err.detail, err.headers)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    if unavailable(exc):
        return await on_unavailable(request, exc)
    # the trace goes to the log, never to the client
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "an unexpected error occurred; it has been logged")


#: an outage's errors by class: Starlette re-raises what only the catch-all ``Exception`` handler
#: answered, and the server would log a traceback per request for an expected outage
HANDLERS = {
    ApiError: on_api_error,
    HTTPException: on_http_error,
    psycopg.OperationalError: on_unavailable,
    PoolTimeout: on_unavailable,
    redis.ConnectionError: on_unavailable,
    redis.TimeoutError: on_unavailable,
    Exception: on_unexpected,
}
