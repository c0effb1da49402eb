"""Workspace entities: view the hierarchy, create, rename, delete (leaves first)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gooddata_api_client.exceptions import NotFoundException
from gooddata_sdk import CatalogWorkspace, GoodDataSdk

from bus.errors import PermanentError
from workers.gooddata import tree
from workers.gooddata.errors import remote

log = logging.getLogger(__name__)


def list_all(sdk: GoodDataSdk) -> list[CatalogWorkspace]:
    with remote("listing workspaces"):
        return sdk.catalog_workspace.list_workspaces()


def get(sdk: GoodDataSdk, workspace_id: str) -> CatalogWorkspace | None:
    """The workspace, or None when the organisation has no such workspace."""
    with remote(f"reading workspace {workspace_id!r}"):
        try:
            return sdk.catalog_workspace.get_workspace(workspace_id)
        except NotFoundException:
            return None


def missing(workspace_id: str) -> PermanentError:
    return PermanentError(f"workspace {workspace_id!r} does not exist")


def view(sdk: GoodDataSdk, root_id: str | None) -> dict[str, Any]:
    workspaces = list_all(sdk)
    if root_id is None:
        return {"workspaces": tree.forest(workspaces), "count": len(workspaces)}
    node = tree.subtree(workspaces, root_id)
    if node is None:
        raise missing(root_id)
    return {"workspaces": [node], "count": len(tree.leaves_first(workspaces, root_id))}


def create(sdk: GoodDataSdk, workspace_id: str, name: str | None, parent_id: str | None) -> dict[str, Any]:
    """Create, or bring an existing workspace's name in line (idempotent). A workspace cannot
    move to another parent: GoodData refuses that, and so does this (permanently)."""
    name = name or workspace_id
    with remote(f"creating workspace {workspace_id!r}"):
        outcome = sdk.catalog_workspace.create_or_update(CatalogWorkspace(workspace_id, name, parent_id))
    log.info("workspace %s %s (parent %s)", workspace_id, outcome, parent_id)
    return {"workspace_id": workspace_id, "name": name, "parent_id": parent_id, "outcome": str(outcome)}


def rename(sdk: GoodDataSdk, workspace_id: str, name: str) -> dict[str, Any]:
    current = get(sdk, workspace_id)
    if current is None:
        raise missing(workspace_id)
    if current.name != name:
        with remote(f"renaming workspace {workspace_id!r}"):
            sdk.catalog_workspace.create_or_update(CatalogWorkspace(workspace_id, name, current.parent_id))
    return {"workspace_id": workspace_id, "name": name, "previous_name": current.name}


def delete(
    sdk: GoodDataSdk,
    workspace_id: str,
    *,
    cascade: bool,
    already_tried: bool = False,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Delete a workspace; with ``cascade`` its descendants first, leaves first.

    A missing workspace is an error on the first attempt (a typo should not pass
    silently); on a later attempt it is what an earlier attempt achieved, so it succeeds.
    """
    workspaces = list_all(sdk)
    if workspace_id not in {w.id for w in workspaces}:
        if already_tried:
            return {"deleted": [], "absent": [workspace_id]}
        raise missing(workspace_id)
    order = tree.leaves_first(workspaces, workspace_id)
    if len(order) > 1 and not cascade:
        children = sorted(w.id for w in workspaces if w.parent_id == workspace_id)
        raise PermanentError(
            f"workspace {workspace_id!r} has children ({', '.join(children)}): delete them first, "
            "or send cascade: true to delete the whole subtree, leaves first"
        )
    deleted: list[str] = []
    for done, target in enumerate(order):
        with remote(f"deleting workspace {target!r}"):
            sdk.catalog_workspace.delete_workspace(target)
        deleted.append(target)
        log.info("deleted workspace %s", target)
        if progress:
            progress(100.0 * (done + 1) / len(order), f"deleted {target}")
    return {"deleted": deleted, "absent": []}
