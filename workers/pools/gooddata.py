"""The ``gooddata`` pool: workspaces, provisioning, sync, backup/restore and exports.

Each actor is a thin wrapper over workers/gooddata/: the SDK calls, the error
classification (4xx permanent, 5xx/timeouts retried, 429 after Retry-After) and the
rate limit live there.
"""

from __future__ import annotations

from typing import Any

from bus import artifacts
from contracts import gooddata
from workers.actors import JobContext, handles
from workers.gooddata import backup, layouts, provision, sync, workspaces
from workers.gooddata.client import sdk
from workers.gooddata.exports import CONTENT_TYPES, dashboard_pdf, visualization
from workers.worker_broker import setup

setup()


@handles(gooddata.WorkspaceView)
def view(command: gooddata.WorkspaceView, job: JobContext) -> dict[str, Any]:
    return workspaces.view(sdk(), command.workspace_id)


@handles(gooddata.WorkspaceCreate)
def create(command: gooddata.WorkspaceCreate, job: JobContext) -> dict[str, Any]:
    return workspaces.create(sdk(), command.workspace_id, command.name, command.parent_id)


@handles(gooddata.WorkspaceRename)
def rename(command: gooddata.WorkspaceRename, job: JobContext) -> dict[str, Any]:
    return workspaces.rename(sdk(), command.workspace_id, command.name)


@handles(gooddata.WorkspaceDelete)
def delete(command: gooddata.WorkspaceDelete, job: JobContext) -> dict[str, Any]:
    return workspaces.delete(
        sdk(), command.workspace_id, cascade=command.cascade, already_tried=job.attempt > 1, progress=job.progress
    )


@handles(gooddata.WorkspaceExport)
def export_layout(command: gooddata.WorkspaceExport, job: JobContext) -> dict[str, Any]:
    layout = layouts.read(sdk(), command.workspace_id)
    data, content_type = layouts.serialise(layout, command.format)
    stored = artifacts.save(job.id, f"{command.workspace_id}.{command.format}", data, content_type)
    return {"workspace_id": command.workspace_id, "format": command.format, "artifact": stored.ref()}


@handles(gooddata.WorkspaceProvision)
def provision_workspace(command: gooddata.WorkspaceProvision, job: JobContext) -> dict[str, Any]:
    return provision.provision(
        sdk(),
        command.source_id,
        command.target_id,
        target_name=command.target_name,
        target_parent_id=command.target_parent_id,
    )


@handles(gooddata.WorkspaceSync)
def sync_workspaces(command: gooddata.WorkspaceSync, job: JobContext) -> dict[str, Any]:
    return sync.sync(
        sdk(), command.workspaces, delete_missing=command.delete_missing, dry_run=command.dry_run, progress=job.progress
    )


@handles(gooddata.WorkspaceBackup)
def backup_workspaces(command: gooddata.WorkspaceBackup, job: JobContext) -> dict[str, Any]:
    return backup.backup(sdk(), command.workspace_ids, job.id, job.progress)


@handles(gooddata.WorkspaceRestore)
def restore_workspaces(command: gooddata.WorkspaceRestore, job: JobContext) -> dict[str, Any]:
    return backup.restore(sdk(), command.backup_job_id, command.workspace_ids, job.progress)


@handles(gooddata.ExportDashboard)
def export_dashboard(command: gooddata.ExportDashboard, job: JobContext) -> dict[str, Any]:
    data, name = dashboard_pdf(sdk(), command.workspace_id, command.dashboard_id, command.file_name)
    stored = artifacts.save(job.id, name, data, CONTENT_TYPES["pdf"])
    return {"workspace_id": command.workspace_id, "dashboard_id": command.dashboard_id, "artifact": stored.ref()}


@handles(gooddata.ExportVisualization)
def export_visualization(command: gooddata.ExportVisualization, job: JobContext) -> dict[str, Any]:
    data, name = visualization(sdk(), command.workspace_id, command.visualization_id, command.format, command.file_name)
    stored = artifacts.save(job.id, name, data, CONTENT_TYPES[command.format])
    return {
        "workspace_id": command.workspace_id,
        "visualization_id": command.visualization_id,
        "format": command.format,
        "artifact": stored.ref(),
    }
