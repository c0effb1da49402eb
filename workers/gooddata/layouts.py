"""Declarative workspace layouts (LDM + analytics model): read, write, serialise, archive.

Layouts are read without ``ACTIVITY_INFO`` (who changed what when): the server keeps
that itself, and leaving it out makes an export or backup put back as it came.
The archive keeps each workspace in the SDK's own on-disk layout
(``store_to_disk``/``load_from_disk``: ``ldm/`` and ``analytics_model/`` YAML trees),
the format gooddata-pipelines' backups also use, plus a ``manifest.json`` with each
workspace's name and parent so a restore can recreate missing workspaces.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import attrs
import yaml
from gooddata_sdk import CatalogDeclarativeWorkspaceModel, GoodDataSdk

from bus.errors import PermanentError
from workers.gooddata.errors import remote

EXCLUDE = ["ACTIVITY_INFO"]
ARCHIVE_FORMAT = "switchyard.gooddata.backup/1"


def read(sdk: GoodDataSdk, workspace_id: str) -> CatalogDeclarativeWorkspaceModel:
    with remote(f"reading the layout of workspace {workspace_id!r}"):
        return sdk.catalog_workspace.get_declarative_workspace(workspace_id, exclude=EXCLUDE)


def write(sdk: GoodDataSdk, workspace_id: str, layout: CatalogDeclarativeWorkspaceModel) -> None:
    with remote(f"writing the layout of workspace {workspace_id!r}"):
        sdk.catalog_workspace.put_declarative_workspace(workspace_id, layout)


def serialise(layout: CatalogDeclarativeWorkspaceModel, fmt: str) -> tuple[bytes, str]:
    """(document, content type) in GoodData's own camelCase field names."""
    document = layout.to_dict(camel_case=True)
    if fmt == "json":
        return json.dumps(document, indent=2, sort_keys=True).encode(), "application/json"
    return yaml.safe_dump(document, sort_keys=True, allow_unicode=True).encode(), "application/yaml"


def counts(layout: CatalogDeclarativeWorkspaceModel) -> dict[str, int]:
    """How many objects of each kind a layout holds (for job results people can read)."""
    found: dict[str, int] = {}
    for part in (layout.ldm, layout.analytics):
        if part is None:
            continue
        for field in attrs.fields(type(part)):
            value = getattr(part, field.name)
            if isinstance(value, list) and value:
                found[field.name] = len(value)
    return found


def archive(entries: list[tuple[dict[str, Any], CatalogDeclarativeWorkspaceModel]], job_id: str) -> bytes:
    """A zip of ``manifest.json`` and ``workspaces/<id>/...`` for (workspace, layout) pairs."""
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        root = Path(tmp)
        for workspace, layout in entries:
            layout.store_to_disk(root / "workspaces" / workspace["id"], sort=True)
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
        manifest = {"format": ARCHIVE_FORMAT, "job_id": job_id, "workspaces": [w for w, _ in entries]}
        zf.writestr("manifest.json", json.dumps(manifest, indent=2))
    return buffer.getvalue()


def unarchive(data: bytes, into: Path) -> list[dict[str, Any]]:
    """Extract a backup into ``into``; returns the manifest's workspaces."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in zf.namelist():
                parts = PurePosixPath(name).parts
                if name.startswith("/") or ".." in parts:
                    raise PermanentError(f"backup archive holds an unsafe path: {name!r}")
            manifest = json.loads(zf.read("manifest.json"))
            zf.extractall(into)
    except (zipfile.BadZipFile, KeyError, ValueError) as err:
        raise PermanentError(f"not a workspace backup archive: {err}") from None
    if manifest.get("format") != ARCHIVE_FORMAT:
        raise PermanentError(f"unknown backup format {manifest.get('format')!r}")
    return list(manifest["workspaces"])


def load(into: Path, workspace_id: str) -> CatalogDeclarativeWorkspaceModel:
    return CatalogDeclarativeWorkspaceModel.load_from_disk(into / "workspaces" / workspace_id)
