"""A pipeline's DAG laid out for an SVG drawn by the server: one column per depth, edges as curves.

Server-side, so the page needs no graph library and no script: each node sits one column right of
its deepest dependency; within a column, nodes are ordered by the mean row of their dependencies
(one pass of the barycentre heuristic: few crossings for catalog-sized graphs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

NODE_W, NODE_H = 180, 30
GAP_X, GAP_Y = 56, 12
PAD = 4
#: longer node ids are cut on the drawing (the full id is in its tooltip and in the list below it)
LABEL_CHARS = 24


@dataclass(frozen=True)
class Box:
    id: str
    label: str
    title: str
    x: int
    y: int
    #: the latest run's status of this node ("" when it has not run)
    status: str


@dataclass(frozen=True)
class Drawing:
    width: int
    height: int
    boxes: list[Box]
    #: SVG path data, one per dependency
    edges: list[str]
    node_w: int = NODE_W
    node_h: int = NODE_H


Node = tuple[str, str, Sequence[str]]


def depths(nodes: Sequence[Node]) -> dict[str, int]:
    """Each node one deeper than its deepest dependency (``nodes`` in run order)."""
    depth: dict[str, int] = {}
    for node_id, _, deps in nodes:
        depth[node_id] = 1 + max((depth[d] for d in deps if d in depth), default=-1)
    return depth


def layout(nodes: Sequence[Node], statuses: Mapping[str, str] | None = None) -> Drawing:
    """``nodes``: (id, target table, dependencies) in run order (dependencies first)."""
    depth = depths(nodes)
    columns: dict[int, list[str]] = {}
    row: dict[str, float] = {}
    for node_id, _, deps in sorted(nodes, key=lambda n: depth[n[0]]):
        placed = [row[d] for d in deps if d in row]
        row[node_id] = sum(placed) / len(placed) if placed else float(len(columns.get(0, [])))
        columns.setdefault(depth[node_id], []).append(node_id)
    position: dict[str, tuple[int, int]] = {}
    for col, ids in columns.items():
        for index, node_id in enumerate(sorted(ids, key=lambda i: row[i])):
            row[node_id] = index
            position[node_id] = (PAD + col * (NODE_W + GAP_X), PAD + index * (NODE_H + GAP_Y))
    statuses = statuses or {}
    boxes = [
        Box(
            id=node_id,
            label=node_id if len(node_id) <= LABEL_CHARS else node_id[: LABEL_CHARS - 1] + "…",
            title=f"{node_id} → {target}",
            x=position[node_id][0],
            y=position[node_id][1],
            status=statuses.get(node_id, ""),
        )
        for node_id, target, _ in nodes
    ]
    edges = []
    for node_id, _, deps in nodes:
        x2, y2 = position[node_id][0], position[node_id][1] + NODE_H // 2
        for dep in deps:
            if dep not in position:
                continue
            x1, y1 = position[dep][0] + NODE_W, position[dep][1] + NODE_H // 2
            bend = (x2 - x1) // 2
            edges.append(f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}")
    width = PAD * 2 + (max(columns, default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = PAD * 2 + max((len(ids) for ids in columns.values()), default=1) * (NODE_H + GAP_Y) - GAP_Y
    return Drawing(width=width, height=height, boxes=boxes, edges=edges)
