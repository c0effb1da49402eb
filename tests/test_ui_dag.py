"""The layout of a pipeline's DAG drawing: columns by depth, rows by the parents' rows, one edge per dependency."""

from __future__ import annotations

from ingress.ui import dag

#: a diamond with a tail: a -> (b, c) -> d -> e, and a lone root f
NODES = [
    ("a", "s.a", []),
    ("f", "s.f", []),
    ("b", "s.b", ["a"]),
    ("c", "s.c", ["a"]),
    ("d", "s.d", ["b", "c"]),
    ("e", "s.e", ["d"]),
]


def test_each_node_is_one_column_right_of_its_deepest_dependency() -> None:
    assert dag.depths(NODES) == {"a": 0, "f": 0, "b": 1, "c": 1, "d": 2, "e": 3}
    drawing = dag.layout(NODES)
    x = {b.id: b.x for b in drawing.boxes}
    assert x["a"] == x["f"] < x["b"] == x["c"] < x["d"] < x["e"]
    assert drawing.width >= x["e"] + dag.NODE_W and drawing.height >= max(b.y for b in drawing.boxes) + dag.NODE_H


def test_one_edge_per_dependency_from_the_parent_to_the_child() -> None:
    drawing = dag.layout(NODES)
    assert len(drawing.edges) == sum(len(deps) for _, _, deps in NODES)
    box = {b.id: b for b in drawing.boxes}
    # the edge into e starts at d's right side and ends at e's left side, both at mid-height
    into_e = drawing.edges[-1]
    start, end = into_e.split()[0][1:], into_e.split()[-1]
    assert start == f"{box['d'].x + dag.NODE_W},{box['d'].y + dag.NODE_H // 2}"
    assert end == f"{box['e'].x},{box['e'].y + dag.NODE_H // 2}"


def test_a_child_sits_near_its_parents_and_boxes_never_overlap() -> None:
    # two chains side by side: each child follows its own parent's row, so no edge crosses
    chains = [("p", "t", []), ("q", "t", []), ("q1", "t", ["q"]), ("p1", "t", ["p"])]
    y = {b.id: b.y for b in dag.layout(chains).boxes}
    assert (y["p"] < y["q"]) == (y["p1"] < y["q1"])
    spots = [(b.x, b.y) for b in dag.layout(NODES).boxes]
    assert len(spots) == len(set(spots))


def test_latest_statuses_and_long_ids() -> None:
    long_id = "n" * 40
    drawing = dag.layout([(long_id, "s.t", []), ("b", "s.b", [long_id])], {long_id: "succeeded"})
    first, second = drawing.boxes
    assert first.status == "succeeded" and second.status == ""
    assert len(first.label) == dag.LABEL_CHARS and first.label.endswith("…") and long_id in first.title
