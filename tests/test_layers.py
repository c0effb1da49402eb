"""The packages' imports point one way: contracts <- bus, pipelines_catalog <- ingress, workers.

ingress/ (the web process, the CLI) and workers/ (the pools, the ticker) share the core and never
import each other; contracts/ imports nothing of ours, so a producer can use it alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import ROOT

OURS = {"contracts", "bus", "pipelines_catalog", "ingress", "workers", "devservers", "sql", "catalog"}
#: what each package may import of ours (besides itself)
ALLOWED = {
    "contracts": set(),
    "sql": set(),
    "bus": {"contracts", "sql"},
    "pipelines_catalog": {"contracts", "bus", "sql"},
    "ingress": {"contracts", "bus", "pipelines_catalog", "sql"},
    # the catalog's Python nodes are named by the catalog and loaded by the pipelines pool
    "workers": {"contracts", "bus", "pipelines_catalog", "sql", "catalog"},
}


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    wrong = {
        str(f.relative_to(ROOT)): sorted(bad) for f in files if (bad := imported(f) - ALLOWED[package] - {package})
    }
    assert not wrong, f"{package}/ imports what it must not: {wrong}"
