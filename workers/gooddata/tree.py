"""The workspace hierarchy as a tree: ``{id, name, parent_id, children}``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol


class Workspace(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def parent_id(self) -> str | None: ...


def children_of(workspaces: Iterable[Workspace]) -> dict[str | None, list[Workspace]]:
    """parent id -> children sorted by id; a parent missing from the list counts as no parent."""
    listed = list(workspaces)
    ids = {w.id for w in listed}
    by_parent: dict[str | None, list[Workspace]] = {}
    for w in sorted(listed, key=lambda w: w.id):
        by_parent.setdefault(w.parent_id if w.parent_id in ids else None, []).append(w)
    return by_parent


def _node(w: Workspace, by_parent: dict[str | None, list[Workspace]]) -> dict[str, Any]:
    return {
        "id": w.id,
        "name": w.name,
        "parent_id": w.parent_id,
        "children": [_node(child, by_parent) for child in by_parent.get(w.id, [])],
    }


def forest(workspaces: Iterable[Workspace]) -> list[dict[str, Any]]:
    """Every root workspace with its descendants."""
    by_parent = children_of(workspaces)
    return [_node(root, by_parent) for root in by_parent.get(None, [])]


def subtree(workspaces: Iterable[Workspace], root_id: str) -> dict[str, Any] | None:
    listed = list(workspaces)
    root = next((w for w in listed if w.id == root_id), None)
    return None if root is None else _node(root, children_of(listed))


def leaves_first(workspaces: Iterable[Workspace], root_id: str) -> list[str]:
    """``root_id`` and its descendants, each after all of its children (the order to delete)."""
    by_parent = children_of(workspaces)
    order: list[str] = []

    def visit(workspace_id: str) -> None:
        for child in by_parent.get(workspace_id, []):
            visit(child.id)
        order.append(workspace_id)

    visit(root_id)
    return order


def parents_first(items: Iterable[tuple[str, str | None]]) -> list[str]:
    """Ids of ``(id, parent_id)`` pairs ordered so that a parent comes before its children."""
    pairs = dict(items)
    order: list[str] = []
    done: set[str] = set()

    def visit(workspace_id: str, path: tuple[str, ...]) -> None:
        if workspace_id in done:
            return
        if workspace_id in path:
            raise ValueError(f"workspaces form a cycle: {' -> '.join((*path, workspace_id))}")
        parent = pairs.get(workspace_id)
        if parent in pairs:
            visit(parent, (*path, workspace_id))
        done.add(workspace_id)
        order.append(workspace_id)

    for workspace_id in sorted(pairs):
        visit(workspace_id, ())
    return order
