"""The import rules, read from the table in docs/architecture.md ("Import rules"), so that the
map a newcomer reads and the check that holds the code to it cannot differ.

Code that runs on Ray reaches the platform only through `fabric.runtime`, the KubeRay builders
know nothing of the server, and the arrows point one way: api -> services -> (db, quota,
backends). The rules are written in that table alone; the `test_the_map_keeps_*` tests pin a
floor under it, so that editing the page cannot drop the rules every later issue builds on.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
SECTION = "## Import rules"
RUNTIME = "fabric.runtime"


@dataclass(frozen=True)
class Rule:
    """What the `.py` files under `folder` (or the file it names) may import of `fabric`:
    only `modules` (`only`), or anything but them."""

    folder: str
    only: bool
    modules: frozenset[str]

    def breaks(self, imported: str) -> bool:
        inside = any(_within(imported, module) for module in self.modules)
        return not inside if self.only else inside


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _parse(cell: str, folders: list[str]) -> list[Rule]:
    text = cell.strip()
    if text == "nothing":
        only, modules = True, []
    elif text.startswith("only "):
        only, modules = True, _ticked(text)
    elif text.startswith("anything but "):
        only, modules = False, _ticked(text)
    else:
        raise AssertionError(f"{ARCHITECTURE.name}: cannot read the import rule {cell!r}")
    assert all(m.split(".")[0] == "fabric" for m in modules), cell
    return [Rule(folder.rstrip("/"), only, frozenset(modules)) for folder in folders]


def read_rules() -> list[Rule]:
    """Every row of the first table after the "Import rules" heading."""
    text = ARCHITECTURE.read_text()
    assert SECTION in text, f"{ARCHITECTURE.name} has no {SECTION!r} section"
    rows = []
    for line in text.split(SECTION, 1)[1].splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    header, rule, *body = rows
    assert header[:2] == ["code in", "may import of `fabric`"], header
    assert set("".join(rule)) <= set("-: "), rule
    return [found for row in body for found in _parse(row[1], _ticked(row[0]))]


RULES = read_rules()


def package_of(path: Path) -> list[str]:
    """The package a file belongs to, as the parts of its dotted name."""
    return list(path.relative_to(ROOT).with_suffix("").parts)[:-1]


def fabric_imports(source: str, package: list[str]) -> set[str]:
    """The `fabric` modules a file's source imports anywhere in it (`from fabric import x`
    counts as fabric.x; relative imports are resolved against the file's `package`)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            if node.module is None or base == "fabric":
                found |= {f"{base}.{alias.name}" for alias in node.names}
            else:
                found.add(base)
    return {module for module in found if module.split(".")[0] == "fabric"}


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.folder)
def test_imports_follow_the_map(rule: Rule) -> None:
    where = ROOT / rule.folder
    files = [where] if where.is_file() else sorted(where.rglob("*.py"))
    assert files, f"{rule.folder} holds no Python file: fix the table in {ARCHITECTURE.name}"
    broken = {
        str(path.relative_to(ROOT)): sorted(
            module
            for module in fabric_imports(path.read_text(), package_of(path))
            if rule.breaks(module)
        )
        for path in files
    }
    assert {path: found for path, found in broken.items() if found} == {}


def _rule(folder: str) -> Rule:
    found = [rule for rule in RULES if rule.folder == folder]
    assert len(found) == 1, f"{ARCHITECTURE.name} needs one import rule for {folder}/"
    return found[0]


@pytest.mark.parametrize("folder", ["jobs", "serve_apps", "aihub", "fabric/runtime"])
def test_the_map_keeps_code_on_ray_to_the_runtime(folder: str) -> None:
    rule = _rule(folder)
    assert rule.only and all(_within(m, RUNTIME) for m in rule.modules)


def test_the_map_keeps_kuberay_apart() -> None:
    assert _rule("kuberay") == Rule("kuberay", True, frozenset())


@pytest.mark.parametrize(
    ("folder", "above"),
    [
        ("fabric/services", {"fabric.api"}),
        ("fabric/db", {"fabric.services", "fabric.api"}),
        ("fabric/quota", {"fabric.services", "fabric.api"}),
        ("fabric/backends", {"fabric.services", "fabric.api"}),
    ],
)
def test_the_map_keeps_the_layering(folder: str, above: set[str]) -> None:
    rule = _rule(folder)
    if rule.only:
        assert not any(_within(m, a) or _within(a, m) for m in rule.modules for a in above)
    else:
        assert above <= rule.modules


def test_imports_are_read_in_every_form() -> None:
    source = (
        "import fabric.api.app\n"
        "import os\n"
        "from fabric import runtime, config\n"
        "from fabric.db.models import JobModel\n"
        "from ..api import deps\n"
        "from . import leases\n"
        "def later():\n"
        "    from fabric.cli import main\n"
    )
    assert fabric_imports(source, ["fabric", "services"]) == {
        "fabric.api.app",
        "fabric.runtime",
        "fabric.config",
        "fabric.db.models",
        "fabric.api",
        "fabric.services.leases",
        "fabric.cli",
    }
