"""Exports through the SDK's export service: visualizations as CSV or XLSX, dashboards as PDF.

GoodData exports are asynchronous (POST -> 201 with an id, GET -> 202 while it runs,
200 with the file); the SDK polls, starting at GOODDATA_EXPORT_POLL_S and doubling up
to 5 s, for at most GOODDATA_EXPORT_TIMEOUT_S (then the job is retried).

``visualization_csv`` is the entry point for other pools (forecast reads a
visualization's data through it).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from gooddata_sdk import GoodDataSdk

from bus import settings
from bus.artifacts import safe_file_name
from workers.gooddata import client
from workers.gooddata.errors import remote

CONTENT_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def _poll() -> dict[str, float]:
    s = settings.get()
    return {"timeout": s.gooddata_export_timeout_s, "retry": s.gooddata_export_poll_s, "max_retry": 5.0}


def _only_file(directory: str) -> bytes:
    (path,) = [p for p in Path(directory).iterdir() if p.is_file()]
    return path.read_bytes()


def visualization(
    sdk: GoodDataSdk, workspace_id: str, visualization_id: str, fmt: str, file_name: str | None = None
) -> tuple[bytes, str]:
    """(file, file name) of a visualization's data as ``csv`` or ``xlsx``."""
    doing = f"exporting visualization {visualization_id!r} of workspace {workspace_id!r} as {fmt.upper()}"
    with remote(doing):
        if file_name is None:
            # the SDK would name the file after the title itself, but a title may hold a "/"
            file_name = sdk.visualizations.get_visualization(workspace_id, visualization_id).title
        name = safe_file_name(file_name)
        with tempfile.TemporaryDirectory() as tmp:
            sdk.export.export_tabular_by_visualization_id(
                workspace_id, visualization_id, fmt.upper(), file_name=name, store_path=tmp, **_poll()
            )
            return _only_file(tmp), f"{name}.{fmt}"


def dashboard_pdf(
    sdk: GoodDataSdk, workspace_id: str, dashboard_id: str, file_name: str | None = None
) -> tuple[bytes, str]:
    name = safe_file_name(file_name or dashboard_id)
    doing = f"exporting dashboard {dashboard_id!r} of workspace {workspace_id!r} as PDF"
    with remote(doing), tempfile.TemporaryDirectory() as tmp:
        sdk.export.export_pdf(workspace_id, dashboard_id, name, store_path=tmp, **_poll())
        return _only_file(tmp), f"{name}.pdf"


def visualization_csv(workspace_id: str, visualization_id: str) -> bytes:
    """A visualization's data as CSV bytes, with this process's GoodData client.

    Raises ``PermanentError`` for what retrying cannot fix (no such workspace or
    visualization, no access) and ``GoodDataUnavailable`` / ``dramatiq.Retry`` for what
    it can, so a calling actor gets the same retry behaviour as the gooddata pool.
    """
    data, _ = visualization(client.sdk(), workspace_id, visualization_id, "csv", file_name=visualization_id)
    return data
