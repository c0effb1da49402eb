"""A local stand-in for GoodData Cloud that replays recorded API interactions.

The recordings (``../shared/gooddata-recordings``, see its README) are the real
request/response pairs of the official ``gooddata-sdk`` test suite. The server is
generic: it loads scenario files, matches each request by method, path and query
(parameters in any order), and answers with the recorded responses for that request
in the order they were recorded; the last one keeps answering once the others are
used. Every request is logged, so a test can prove what was (not) written. A request
with no recording is answered 501 and listed in ``unmatched``.

The real SDK in a worker process talks to it: ``GOODDATA_HOST=<replay.url>``.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
RECORDINGS = Path(os.environ.get("GOODDATA_RECORDINGS", ROOT.parent / "shared" / "gooddata-recordings"))
RECORDED_HOST = "http://localhost:3000"
#: headers of the recorded responses that do not describe the replayed body
_HOP_HEADERS = {"content-length", "transfer-encoding", "content-encoding", "connection", "date"}


@dataclass
class Request:
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    body: bytes
    authorization: str | None
    at: float = field(default_factory=time.monotonic)

    @property
    def writes(self) -> bool:
        return self.method in {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def _key(method: str, uri: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    parts = urlsplit(uri)
    return method.upper(), parts.path, tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))


def _body(raw: Any) -> bytes:
    if raw is None:
        return b""
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):
        return raw.encode()
    return json.dumps(raw).encode()  # the README: JSON documents are stored parsed


def interaction(
    method: str, uri: str, status: int, body: Any = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """An interaction in the recordings' own format (for the few that were never recorded)."""
    content_type = "application/json" if isinstance(body, dict | list) else "application/octet-stream"
    return {
        "request": {"method": method, "uri": RECORDED_HOST + uri, "body": None},
        "response": {
            "status": {"code": status},
            "headers": {"Content-Type": [content_type], **{k: [v] for k, v in (headers or {}).items()}},
            "body": {"string": body if body is not None else ""},
        },
    }


def recording(name: str) -> list[dict[str, Any]]:
    """The interactions of one recorded scenario, e.g. ``workspaces/demo_workspace_list.yaml``."""
    return yaml.safe_load((RECORDINGS / name).read_text())["interactions"]


class ReplayServer:
    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str, tuple[tuple[str, str], ...]], collections.deque[Response]] = {}
        self.requests: list[Request] = []
        self.unmatched: list[Request] = []
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, name="gooddata-replay", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    # -- scenarios
    def load(self, *scenarios: str | list[dict[str, Any]]) -> ReplayServer:
        """Replace what is served by these scenarios (file names under the recordings, or
        lists of interactions), and clear the request log."""
        with self._lock:
            self._answers = {}
            self.requests, self.unmatched = [], []
        for scenario in scenarios:
            self.add(recording(scenario) if isinstance(scenario, str) else scenario)
        return self

    def add(self, interactions: list[dict[str, Any]], *, first: bool = False) -> None:
        """Serve these too: after what is already there for the same request, or before it."""
        with self._lock:
            for item in reversed(interactions) if first else interactions:
                request, response = item["request"], item["response"]
                headers = {
                    name: str(values[0] if isinstance(values, list) else values)
                    for name, values in (response.get("headers") or {}).items()
                    if name.lower() not in _HOP_HEADERS and values
                }
                if "Location" in headers:
                    headers["Location"] = headers["Location"].replace(RECORDED_HOST, self.url)
                answer = Response(response["status"]["code"], headers, _body(response["body"]["string"]))
                queue = self._answers.setdefault(_key(request["method"], request["uri"]), collections.deque())
                queue.appendleft(answer) if first else queue.append(answer)

    def answer(self, request: Request) -> Response | None:
        with self._lock:
            self.requests.append(request)
            queue = self._answers.get((request.method, request.path, tuple(sorted(request.query))))
            if not queue:
                self.unmatched.append(request)
                return None
            return queue.popleft() if len(queue) > 1 else queue[0]

    # -- what happened
    def writes_to(self, path_fragment: str) -> list[Request]:
        """Requests that change something at a path containing ``path_fragment``."""
        return [r for r in self.requests if r.writes and path_fragment in r.path]

    def seen(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body leave in two writes: without this, Nagle holds the body back
            # until the client's delayed ACK (~40 ms per request on Linux)
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
                    body=self.rfile.read(length) if length else b"",
                    authorization=self.headers.get("Authorization"),
                )
                if server.latency_s:
                    time.sleep(server.latency_s)
                answer = server.answer(request)
                if answer is None:
                    message = f"no recorded interaction for {request.method} {self.path}"
                    answer = Response(
                        501, {"Content-Type": "application/json"}, json.dumps({"detail": message}).encode()
                    )
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request log is the record

        return Handler


# -- interactions GoodData has but the recordings lack (same protocol as the recorded ones)

#: the smallest well-formed PDF: one empty page
SMALL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def pdf_export(workspace_id: str, dashboard_id: str, export_id: str = "EXPORT_NORMALIZED_PDF") -> list[dict[str, Any]]:
    """Dashboard lookup, then the visual export: POST 201 -> GET 202 -> GET 200 with a PDF."""
    base = f"/api/v1/actions/workspaces/{workspace_id}/export/visual"
    dashboard = {
        "data": {
            "id": dashboard_id,
            "type": "analyticalDashboard",
            "attributes": {"title": "Campaign", "content": {}},
        },
        "links": {
            "self": f"{RECORDED_HOST}/api/v1/entities/workspaces/{workspace_id}/analyticalDashboards/{dashboard_id}"
        },
    }
    return [
        interaction(
            "GET", f"/api/v1/entities/workspaces/{workspace_id}/analyticalDashboards/{dashboard_id}", 200, dashboard
        ),
        interaction("POST", base, 201, {"exportResult": export_id}),
        interaction("GET", f"{base}/{export_id}", 202, ""),
        interaction("GET", f"{base}/{export_id}", 200, SMALL_PDF, {"Content-Type": "application/pdf"}),
    ]


def not_found() -> dict[str, Any]:
    """GoodData's own 404 body, as recorded."""
    return {
        "detail": "The requested endpoint does not exist or you do not have permission to access it.",
        "status": 404,
        "title": "Not Found",
        "traceId": "NORMALIZED_TRACE_ID_000000000000",
    }
