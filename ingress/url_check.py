"""Control characters in a URL are refused before any route sees them.

Postgres text refuses NUL, and no id, name, cursor or time of this API contains a control
character, so a ``%00`` in a path parameter (``/v1/jobs/%00``) or a query parameter
(``?cursor=%00``) would otherwise reach a query and fail it (a 500). One check here covers every
route of the API and the dashboard: 422 naming the parameter (for the path, the route's own
parameter name), 404 when no route has such a path. Query values may carry tab, line feed and
carriage return (a JSON prefill of the dashboard's submit form may be pretty-printed); nothing else.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from ingress.errors import error_response

#: C0 controls and DEL
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: the same, less the whitespace a text value may hold
_CONTROL_IN_VALUE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MESSAGE = "control characters (such as NUL, %00) are not allowed"


def _escaped(text: str) -> str:
    """A name that holds control characters, shown with them escaped (``a\\x00``)."""
    return text.encode("unicode_escape").decode("ascii")[:64]


def problem(scope: Scope) -> tuple[int, dict[str, str]] | None:
    """(status, detail) for a URL with control characters, None for a clean one."""
    path: str = scope.get("path", "")
    if _CONTROL.search(path):
        for route in getattr(scope.get("app"), "routes", ()):
            match, child = route.matches(scope)
            if match is Match.NONE:
                continue
            for name, value in child.get("path_params", {}).items():
                if _CONTROL.search(str(value)):
                    return 422, {"path": name, "message": MESSAGE}
        return 404, {"path": _escaped(path), "message": f"no such route: {MESSAGE} in a URL"}
    raw: bytes = scope.get("query_string", b"")
    if raw:
        # decoded as Starlette's QueryParams decodes it, so the check sees what a route would
        for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            if _CONTROL.search(name):
                return 422, {"path": _escaped(name), "message": f"{MESSAGE} in a parameter's name"}
            if _CONTROL_IN_VALUE.search(value):
                return 422, {"path": name, "message": MESSAGE}
    return None


class UrlCheck:
    """ASGI middleware: the answer of ``problem`` for a bad URL, the app otherwise."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = problem(scope)
            if found is not None:
                status, detail = found
                error = "invalid" if status == 422 else "not_found"
                await error_response(status, error, detail)(scope, receive, send)
                return
        await self.app(scope, receive, send)
