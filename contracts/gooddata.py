"""Commands of the ``gooddata`` pool: workspaces, provisioning, backup, exports."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from contracts.base import CommandBase, Identifier, Model, Name


class WorkspaceView(CommandBase, tag="gooddata.workspace.view"):
    """The workspace hierarchy as a tree, whole organisation or rooted at ``workspace_id``."""

    workspace_id: Identifier | None = None


class WorkspaceCreate(CommandBase, tag="gooddata.workspace.create"):
    workspace_id: Identifier
    name: Name | None = None  # defaults to workspace_id
    parent_id: Identifier | None = None


class WorkspaceRename(CommandBase, tag="gooddata.workspace.rename"):
    workspace_id: Identifier
    name: Name


class WorkspaceDelete(CommandBase, tag="gooddata.workspace.delete"):
    workspace_id: Identifier
    #: delete children first (leaves first); without it a workspace with children is refused
    cascade: bool = False


class WorkspaceExport(CommandBase, tag="gooddata.workspace.export"):
    """Declarative layout (LDM + analytics model) stored as an artifact."""

    workspace_id: Identifier
    format: Literal["yaml", "json"] = "yaml"


class WorkspaceProvision(CommandBase, tag="gooddata.workspace.provision"):
    """Copy ``source_id``'s layout into ``target_id``. The source is only ever read."""

    source_id: Identifier
    target_id: Identifier
    #: used when the target is created (default: the target id); an existing target keeps its name
    target_name: Name | None = None
    target_parent_id: Identifier | None = None

    def __post_init__(self) -> None:
        if self.target_id == self.source_id:
            raise ValueError("target_id: must differ from source_id (the source is never written)")


class WorkspaceSpec(Model):
    workspace_id: Identifier
    name: Name
    parent_id: Identifier | None = None


class WorkspaceSync(CommandBase, tag="gooddata.workspace.sync"):
    """Make the organisation match ``workspaces`` (full load)."""

    workspaces: Annotated[list[WorkspaceSpec], msgspec.Meta(max_length=10_000)]
    #: also delete workspaces of the organisation that are not listed (children first)
    delete_missing: bool = False
    #: only compute and return the changes
    dry_run: bool = False

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for spec in self.workspaces:
            if spec.workspace_id in seen:
                raise ValueError(f"workspaces: workspace_id {spec.workspace_id!r} is listed twice")
            seen.add(spec.workspace_id)


class WorkspaceBackup(CommandBase, tag="gooddata.workspace.backup"):
    """Declarative layouts (and name, parent) of the workspaces, zipped to the artifact store."""

    #: default: every workspace of the organisation
    workspace_ids: Annotated[list[Identifier], msgspec.Meta(min_length=1, max_length=1000)] | None = None


class WorkspaceRestore(CommandBase, tag="gooddata.workspace.restore"):
    """Put a backup's layouts back, creating missing workspaces (parents first)."""

    #: the job id of the backup whose artifact is put back
    backup_job_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    #: default: every workspace in the backup
    workspace_ids: Annotated[list[Identifier], msgspec.Meta(min_length=1, max_length=1000)] | None = None


class ExportDashboard(CommandBase, tag="gooddata.export.dashboard"):
    """Dashboard as PDF."""

    workspace_id: Identifier
    dashboard_id: Identifier
    file_name: Name | None = None


class ExportVisualization(CommandBase, tag="gooddata.export.visualization"):
    workspace_id: Identifier
    visualization_id: Identifier
    format: Literal["csv", "xlsx"] = "csv"
    file_name: Name | None = None


COMMANDS = (
    WorkspaceView,
    WorkspaceCreate,
    WorkspaceRename,
    WorkspaceDelete,
    WorkspaceExport,
    WorkspaceProvision,
    WorkspaceSync,
    WorkspaceBackup,
    WorkspaceRestore,
    ExportDashboard,
    ExportVisualization,
)
