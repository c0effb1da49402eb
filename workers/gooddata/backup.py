"""Backup and restore of workspace layouts through the artifact store.

Like gooddata-pipelines' backup/restore: each workspace's declarative layout in the
SDK's on-disk form, zipped; restore puts it back. Beyond it: the archive also records
each workspace's name and parent, so a restore recreates deleted workspaces (parents
first), and a backup is addressed by its job id.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gooddata_sdk import GoodDataSdk

from bus import artifacts
from bus.errors import PermanentError
from workers.gooddata import layouts, tree, workspaces

Progress = Callable[[float, str], None]


def backup(sdk: GoodDataSdk, workspace_ids: list[str] | None, job_id: str, progress: Progress) -> dict[str, Any]:
    existing = {w.id: w for w in workspaces.list_all(sdk)}
    chosen = sorted(existing) if workspace_ids is None else list(dict.fromkeys(workspace_ids))
    absent = [i for i in chosen if i not in existing]
    if absent:
        raise PermanentError(f"cannot back up workspaces that do not exist: {', '.join(absent)}")
    entries = []
    for done, workspace_id in enumerate(chosen, 1):
        ws = existing[workspace_id]
        entries.append(({"id": ws.id, "name": ws.name, "parent_id": ws.parent_id}, layouts.read(sdk, ws.id)))
        progress(90.0 * done / len(chosen), f"read {workspace_id}")
    data = layouts.archive(entries, job_id)
    stored = artifacts.save(job_id, f"gooddata-backup-{job_id}.zip", data, "application/zip")
    return {"workspaces": chosen, "artifact": stored.ref()}


def restore(
    sdk: GoodDataSdk, backup_job_id: str, workspace_ids: list[str] | None, progress: Progress
) -> dict[str, Any]:
    stored = artifacts.find(backup_job_id)
    if stored is None:
        raise PermanentError(f"job {backup_job_id!r} has no backup artifact")
    data = stored.read()
    with tempfile.TemporaryDirectory() as tmp:
        into = Path(tmp)
        manifest = {w["id"]: w for w in layouts.unarchive(data, into)}
        chosen = list(manifest) if workspace_ids is None else list(dict.fromkeys(workspace_ids))
        absent = [i for i in chosen if i not in manifest]
        if absent:
            raise PermanentError(f"backup {backup_job_id!r} does not hold: {', '.join(absent)}")
        existing = {w.id for w in workspaces.list_all(sdk)}
        order = tree.parents_first((i, manifest[i]["parent_id"]) for i in chosen)
        created = []
        for done, workspace_id in enumerate(order, 1):
            ws = manifest[workspace_id]
            if workspace_id not in existing:
                workspaces.create(sdk, workspace_id, ws["name"], ws["parent_id"])
                created.append(workspace_id)
            layouts.write(sdk, workspace_id, layouts.load(into, workspace_id))
            progress(100.0 * done / len(order), f"restored {workspace_id}")
    return {"restored": order, "created": created, "backup_job_id": backup_job_id}
