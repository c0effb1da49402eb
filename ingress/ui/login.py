"""Signing in with an API key and out again."""

from __future__ import annotations

import hmac
import time

import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ingress.throttle import FailureThrottle
from ingress.ui.session import COOKIE, LIFETIME_S, LOGIN_CSRF_COOKIE, revoked_key
from ingress.ui.web import (
    SECURITY_HEADERS,
    FormError,
    current_session,
    error_page,
    log,
    new_login_csrf,
    page,
    read_form,
    render,
    safe_next,
    set_cookie,
    signer,
    state_of,
)

#: wrong keys one address may try per window; past it a wrong key is answered 429 until the window
#: ends, the right key still signs in (ingress/throttle.py, shared with the API's failed-key throttle)
MAX_FAILURES = 10
FAILURE_WINDOW_S = 600
THROTTLE = FailureThrottle("switchyard:ui:login-failures", MAX_FAILURES, FAILURE_WINDOW_S)


def _login_page(request: Request, status: int = 200, error: str | None = None, next_: str = "/ui") -> Response:
    # the login form is protected by a double-submit token: the cookie and the field must match
    token = new_login_csrf()
    response = render(request, "login.html", status, login_csrf=token, error=error, next=next_)
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, 600)
    return response


async def login_form(request: Request) -> Response:
    if await current_session(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), 303, SECURITY_HEADERS)
    return _login_page(request, next_=safe_next(request.query_params.get("next")))


async def login(request: Request) -> Response:
    try:
        form = await read_form(request)
    except FormError as err:
        return error_page(request, err.status, "Bad form", err.message)
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie_token or not hmac.compare_digest(cookie_token, form.get("csrf", "")):
        return error_page(request, 403, "Forbidden", "The login form's CSRF token is missing or wrong; reload it.")
    next_ = safe_next(form.get("next"))
    presented = form.get("api_key", "").strip()
    if not presented:
        return _login_page(request, 401, "Enter an API key.", next_)
    key = signer(request).valid_key(presented)
    if key is None:
        wait_s = await THROTTLE.failed(state_of(request).redis, request.client.host if request.client else "")
        if wait_s:
            message = f"Too many failed sign-ins from your address; try again in {(wait_s + 59) // 60} min."
            response = _login_page(request, 429, message, next_)
            response.headers["Retry-After"] = str(wait_s)
            return response
        return _login_page(request, 403, "That API key is not valid.", next_)
    token, _ = signer(request).issue(key)
    response = RedirectResponse(next_, 303, SECURITY_HEADERS)
    set_cookie(request, response, COOKIE, token, LIFETIME_S)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui")
    return response


@page
async def logout(request: Request) -> Response:
    session = request.state.ui_session
    try:
        ttl = max(1, session.expires - int(time.time()))
        await state_of(request).redis.set(revoked_key(session.id), b"1", ex=ttl)
    except aioredis.RedisError as err:
        log.warning("could not revoke a dashboard session: %s", err.__class__.__name__)
    response = RedirectResponse("/ui/login", 303, SECURITY_HEADERS)
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return response
