"""What every dashboard page shares: templates, security headers, the session guard, form bodies."""

from __future__ import annotations

import functools
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import msgspec
import redis.asyncio as aioredis
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from contracts.nesting import MAX_DEPTH, deeper_than
from ingress.state import State
from ingress.ui.session import COOKIE, LOGIN_CSRF_COOKIE, Session, Signer, revoked_key

log = logging.getLogger(__name__)

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def submit_link(type_: str, **fields: Any) -> str:
    """A link to the Submit form with this command filled in (the operator reviews it, then sends it)."""
    return "/ui/submit?" + urlencode({"type": type_, "command": json.dumps(fields, separators=(",", ":"))})


TEMPLATES.globals["submit_link"] = submit_link

# no inline script or style anywhere: the policy can forbid them, so injected markup cannot run
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

FORM_LIMIT_BYTES = 1 << 20

Handler = Callable[[Request], Awaitable[Response]]


class FormError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FieldError(Exception):
    """A form's field the page marks: status, and ``error`` = {path, message}."""

    def __init__(self, status: int, path: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = {"path": path, "message": message}


def command_fields(text: str, type_: str, at: str) -> dict[str, Any]:
    """A command's fields typed as a JSON object (the chosen ``type_`` is added by the caller);
    ``at`` is where the command sits in what the page submits (``$``, ``$.command``)."""
    if deeper_than(text):
        raise FieldError(400, at, f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        fields = msgspec.json.decode(text or "{}")
    except msgspec.DecodeError as err:
        raise FieldError(400, at, f"not JSON: {err}") from None
    if not isinstance(fields, dict):
        raise FieldError(422, at, "a JSON object of the command's fields")
    if "type" in fields and fields["type"] != type_:
        raise FieldError(422, f"{at}.type", "differs from the chosen type")
    return fields


def state_of(request: Request) -> State:
    return request.app.state.switchyard


def signer(request: Request) -> Signer:
    app_state = request.app.state
    if not hasattr(app_state, "ui_signer"):
        app_state.ui_signer = Signer(state_of(request).settings.keys)
    return app_state.ui_signer


def render(
    request: Request, template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    session: Session | None = getattr(request.state, "ui_session", None)
    context.setdefault("csrf", session.csrf() if session else "")
    context.setdefault("signed_in", session is not None)
    context.setdefault("path", request.url.path)
    html = TEMPLATES.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status, {**SECURITY_HEADERS, **(headers or {})})


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", status, title=title, message=message)


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/ui",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def safe_next(target: str | None) -> str:
    """Only a dashboard path: ``next`` must never send the operator to another site."""
    if (
        target
        and (target == "/ui" or target.startswith("/ui/"))
        and not any(bad in target for bad in ("//", "\\", "/.", "%2e", "%2E", "%2f", "%2F", "%5c", "%5C"))
    ):
        return target
    return "/ui"


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", 303, SECURITY_HEADERS)


async def read_form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        raise FormError(415, "forms are sent as application/x-www-form-urlencoded")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > FORM_LIMIT_BYTES:
            raise FormError(413, f"the form is larger than {FORM_LIMIT_BYTES} bytes")
        chunks.append(chunk)
    try:
        return dict(parse_qsl(b"".join(chunks).decode("utf-8"), keep_blank_values=True, max_num_fields=100))
    except (UnicodeDecodeError, ValueError):
        raise FormError(400, "the form could not be read") from None


async def current_session(request: Request) -> Session | None:
    session = signer(request).read(request.cookies.get(COOKIE))
    if session is None:
        return None
    try:
        if await state_of(request).redis.exists(revoked_key(session.id)):
            return None
    except aioredis.RedisError as err:
        # a signed, unexpired token is still good; only a logout in this outage is not seen
        log.warning("session revocation list unavailable: %s", err.__class__.__name__)
    return session


def page(handler: Handler) -> Handler:
    """A dashboard page: needs the session; a POST also needs the session's CSRF token."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        session = await current_session(request)
        if session is None:
            return login_redirect(request)
        request.state.ui_session = session
        if request.method == "POST":
            try:
                form = await read_form(request)
            except FormError as err:
                return error_page(request, err.status, "Bad form", err.message)
            if not session.csrf_ok(form.get("csrf")):
                return error_page(request, 403, "Forbidden", "The form's CSRF token is missing or wrong; reload it.")
            request.state.form = form
        return await handler(request)

    return guarded


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


__all__ = ["LOGIN_CSRF_COOKIE", "page", "render"]
