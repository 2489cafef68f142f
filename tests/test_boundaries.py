"""The import rules of DESIGN.md: code that runs on Ray reaches the platform only through its
light runtime modules, and the KubeRay builders know nothing of the server."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
RUNTIME = {"fabric.runtime", "fabric.runtime.model_files", "fabric.runtime.model_store"}
ALLOWED = {"jobs": RUNTIME, "serve_apps": RUNTIME, "aihub": RUNTIME, "kuberay": set()}


def _fabric_imports(path: Path) -> set[str]:
    """The `fabric` modules a file imports (`from fabric import x` counts as fabric.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "fabric"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "fabric":
            if node.module == "fabric":
                found |= {f"fabric.{alias.name}" for alias in node.names}
            else:
                found.add(node.module or "")
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_code_on_ray_imports_only_the_runtime_of_fabric(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    broken = {
        str(path.relative_to(ROOT)): sorted(imported - ALLOWED[package])
        for path in files
        if (imported := _fabric_imports(path)) - ALLOWED[package]
    }
    assert broken == {}
