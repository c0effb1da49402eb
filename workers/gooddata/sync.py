"""Full load: make the organisation's workspaces match a desired list (id, name, parent).

Like gooddata-pipelines' workspace full load: missing workspaces are created (parents
first), workspaces whose name differs are renamed, and, only with ``delete_missing``,
workspaces that are not listed are deleted (children first). GoodData cannot move a
workspace to another parent, so a listed parent that differs from the existing one is a
problem, reported rather than "fixed" by deleting and recreating the workspace with all
its content. A plan with problems changes nothing; a dry run returns the plan.
Running it again computes a fresh plan, so a retried or repeated sync is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gooddata_sdk import CatalogWorkspace, GoodDataSdk

from bus.errors import PermanentError
from contracts.gooddata import WorkspaceSpec
from workers.gooddata import tree, workspaces
from workers.gooddata.errors import remote


def plan(existing: list[CatalogWorkspace], desired: list[WorkspaceSpec], delete_missing: bool) -> dict[str, Any]:
    have = {w.id: w for w in existing}
    want = {s.workspace_id: s for s in desired}
    deleting = set(have) - set(want) if delete_missing else set()
    problems: list[str] = []
    for spec in desired:
        parent = spec.parent_id
        if parent is not None and parent not in want and parent not in have:
            problems.append(f"{spec.workspace_id}: parent {parent!r} neither exists nor is listed")
        elif parent in deleting:
            problems.append(f"{spec.workspace_id}: parent {parent!r} is not listed, so delete_missing would delete it")
        current = have.get(spec.workspace_id)
        if current is not None and current.parent_id != parent:
            problems.append(
                f"{spec.workspace_id}: exists under {current.parent_id!r}, listed under {parent!r}; "
                "GoodData cannot move a workspace to another parent"
            )
    try:
        order = tree.parents_first((s.workspace_id, s.parent_id) for s in desired)
    except ValueError as err:
        problems.append(str(err))
        order = sorted(want)
    create = [want[i] for i in order if i not in have]
    update = [s for s in desired if s.workspace_id in have and have[s.workspace_id].name != s.name]
    delete = list(reversed(tree.parents_first((i, have[i].parent_id) for i in deleting)))
    return {
        "create": [{"workspace_id": s.workspace_id, "name": s.name, "parent_id": s.parent_id} for s in create],
        "update": [
            {"workspace_id": s.workspace_id, "name": s.name, "previous_name": have[s.workspace_id].name} for s in update
        ],
        "delete": delete,
        "unchanged": len(desired) - len(create) - len(update),
        "problems": problems,
    }


def sync(
    sdk: GoodDataSdk,
    desired: list[WorkspaceSpec],
    *,
    delete_missing: bool,
    dry_run: bool,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    existing = workspaces.list_all(sdk)
    changes = plan(existing, desired, delete_missing)
    result = {"dry_run": dry_run, **changes}
    if dry_run:
        return result
    if changes["problems"]:
        raise PermanentError("sync refused, nothing changed: " + "; ".join(changes["problems"]))
    parents = {w.id: w.parent_id for w in existing}
    steps = len(changes["create"]) + len(changes["update"]) + len(changes["delete"])
    done = 0

    def step(text: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(100.0 * done / steps, text)

    for item in changes["create"]:
        workspaces.create(sdk, item["workspace_id"], item["name"], item["parent_id"])
        step(f"created {item['workspace_id']}")
    for item in changes["update"]:
        workspace_id = item["workspace_id"]
        with remote(f"renaming workspace {workspace_id!r}"):
            sdk.catalog_workspace.create_or_update(CatalogWorkspace(workspace_id, item["name"], parents[workspace_id]))
        step(f"renamed {workspace_id}")
    for workspace_id in changes["delete"]:
        with remote(f"deleting workspace {workspace_id!r}"):
            sdk.catalog_workspace.delete_workspace(workspace_id)
        step(f"deleted {workspace_id}")
    return result
