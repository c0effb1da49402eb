"""The process's GoodData SDK: built once from GOODDATA_HOST / GOODDATA_TOKEN.

Every HTTP request the SDK makes goes through one hook that waits for the rate
limiter and sets a timeout (the generated client has none by default, so a stalled
connection would hold a worker thread forever). The SDK's own 429 retry loop is
turned off: a rate-limited job is retried by Dramatiq after Retry-After instead of
sleeping in a worker thread (see errors.py).
"""

from __future__ import annotations

import threading
from typing import Any

from gooddata_sdk import GoodDataSdk
from gooddata_sdk.client import GoodDataApiClient, GoodDataApiClientRetryConfig

from bus import settings
from bus.errors import PermanentError
from workers.gooddata.ratelimit import RateLimiter

_sdk: GoodDataSdk | None = None
_lock = threading.Lock()


def build(host: str, token: str, *, rate_per_s: float, timeout_s: float) -> GoodDataSdk:
    if not host or not token:
        raise PermanentError("GoodData is not configured: set GOODDATA_HOST and GOODDATA_TOKEN for the gooddata pool")
    client = GoodDataApiClient(
        host.rstrip("/"),
        token,
        extra_user_agent="switchyard",
        retry_config=GoodDataApiClientRetryConfig(max_retries=0),
    )
    limiter = RateLimiter(rate_per_s)
    rest = client.entities_api.api_client.rest_client  # the one transport all generated APIs share
    send = rest.request
    # connect quickly or fail; reads may take up to the whole timeout
    timeout = (min(10.0, timeout_s), timeout_s)

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        limiter.acquire()
        if not kwargs.get("_request_timeout"):
            kwargs["_request_timeout"] = timeout
        return send(method, url, *args, **kwargs)

    rest.request = request
    return GoodDataSdk(client)


def sdk() -> GoodDataSdk:
    """The SDK of this process (thread-safe: its HTTP pool is shared by the worker threads)."""
    global _sdk
    if _sdk is None:
        with _lock:
            if _sdk is None:
                s = settings.get()
                _sdk = build(
                    s.gooddata_host, s.gooddata_token, rate_per_s=s.gooddata_rate_per_s, timeout_s=s.gooddata_timeout_s
                )
    return _sdk
