"""One route per path, whatever its methods: a method it lacks is answered 405 naming them all.

Starlette answers a path whose routes all miss the method with the first route's ``Allow``
(``GET, HEAD`` for a path that also takes PATCH and DELETE); one route per path names every method.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Endpoint = Callable[[Request], Awaitable[Response]]


def resource(path: str, **endpoints: Endpoint) -> Route:
    """``resource("/v1/x/{id}", get=read, patch=change)``: one route serving each method's endpoint."""
    by_method = {method.upper(): endpoint for method, endpoint in endpoints.items()}
    if "GET" in by_method:
        by_method.setdefault("HEAD", by_method["GET"])

    async def dispatch(request: Request) -> Response:
        return await by_method[request.method](request)

    dispatch.__name__ = "_".join(e.__name__ for e in endpoints.values())
    return Route(path, dispatch, methods=list(by_method))
