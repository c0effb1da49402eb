"""GoodData: the workspace tree, as the newest ``gooddata.workspace.view`` job saw it.

The ingress never calls GoodData itself (no remote call inside a request): "Refresh" submits a view
command to the gooddata pool and the page follows that job. Each workspace links to the Submit form
filled in for the commands an operator runs on it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from contracts import TERMINAL, JobStatus
from contracts.gooddata import WorkspaceView
from ingress.errors import ApiError
from ingress.routes.commands import accept
from ingress.ui import queries
from ingress.ui.web import SECURITY_HEADERS, error_page, page, render, state_of, submit_link

#: a view still queued or running after this long is not waited for on the page
PENDING_WINDOW = dt.timedelta(hours=1)


def _actions(node: dict[str, Any]) -> dict[str, Any]:
    """The node with the links of what can be done to it, and the same for its children."""
    ws = node["id"]
    return {
        **node,
        "children": [_actions(child) for child in node.get("children", [])],
        "actions": [
            ("add child", submit_link("gooddata.workspace.create", workspace_id=f"{ws}_child", parent_id=ws)),
            ("rename", submit_link("gooddata.workspace.rename", workspace_id=ws, name=node.get("name") or ws)),
            ("export layout", submit_link("gooddata.workspace.export", workspace_id=ws)),
            ("back up", submit_link("gooddata.workspace.backup", workspace_ids=[ws])),
            ("delete", submit_link("gooddata.workspace.delete", workspace_id=ws)),
        ],
    }


@page
async def workspace_tree(request: Request) -> Response:
    since = dt.datetime.now(dt.UTC) - PENDING_WINDOW
    async with state_of(request).pool.connection() as conn:
        views = await (await conn.execute(queries.WORKSPACE_VIEWS, {"since": since, "limit": 20})).fetchall()
    snapshot = next((v for v in views if v["status"] == JobStatus.SUCCEEDED.value), None)
    newer = [v for v in views if snapshot is None or v["created_at"] > snapshot["created_at"]]
    # the newest attempt since the snapshot: still running (the page follows it) or failed (shown)
    pending = next((v for v in newer if v["status"] not in {s.value for s in TERMINAL}), None)
    failed = next((v for v in newer if v["status"] in {"dead", "cancelled"}), None) if pending is None else None
    tree = [_actions(node) for node in (snapshot["result"] or {}).get("workspaces", [])] if snapshot else []
    return render(
        request,
        "gooddata.html",
        snapshot=snapshot,
        tree=tree,
        count=(snapshot["result"] or {}).get("count", 0) if snapshot else 0,
        pending=pending,
        failed=failed,
        refresh=2000 if pending else None,
    )


@page
async def refresh_tree(request: Request) -> Response:
    try:
        await accept(state_of(request), WorkspaceView())
    except ApiError as err:
        return error_page(request, err.status, "Not submitted", err.message)
    return RedirectResponse("/ui/gooddata", 303, SECURITY_HEADERS)
