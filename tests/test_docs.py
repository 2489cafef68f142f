"""The documentation against the code, so that it cannot drift: every setting with its current
default, every `FABRIC_*` variable the code reads, every file and name the map points at, and
no link leading out of the repository. Fast and without Ray: it reads files and `Settings`.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from fabric.config import Settings
from fabric.services.templates import builtin

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
TEMPLATES = DOCS / "templates.md"
ARCHITECTURE = DOCS / "architecture.md"
PAGES = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *DOCS.glob("*.md")])
PRODUCT = ("fabric", "jobs", "serve_apps", "aihub", "kuberay")
# Where a variable the pages list may be read: the product, the tests and CI.
READERS = (*PRODUCT, "tests", ".ci")
VARIABLE = re.compile(r"\bFABRIC_[A-Z][A-Z0-9_]*[A-Z0-9]\b")
REPO_PATH = re.compile(
    r"^(fabric|jobs|serve_apps|aihub|kuberay|tests|benchmarks|deploy|cluster_configs|demo|docs"
    r"|\.ci)(/[\w.-]+)*/?$"
)


def table(page: Path, heading: str) -> list[list[str]]:
    """The rows (header and rule left out) of the first table after `heading`."""
    text = page.read_text()
    assert heading in text, f"{page.name} has no {heading!r} section"
    rows = []
    for line in text.split(heading, 1)[1].splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[2:]


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def shown(value: Any) -> str:
    """A default as the page writes it: what one would set the variable to."""
    if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}"
    if isinstance(value, Path):
        home = Path.home()
        return f"~/{value.relative_to(home)}" if value.is_relative_to(home) else str(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def documented_settings() -> dict[str, str]:
    found = {}
    for variable, default, *_ in table(CONFIGURATION, "## Settings"):
        (name,) = ticked(variable)
        assert name not in found, f"{name} is listed twice"
        found[name] = default.strip("`") if default.startswith("`") else default
    return found


def test_configuration_lists_every_setting_with_its_default() -> None:
    prefix = Settings.model_config["env_prefix"]
    expected = {
        prefix + name.upper(): shown(field.get_default(call_default_factory=True))
        for name, field in Settings.model_fields.items()
    }
    assert documented_settings() == expected


@cache
def source(path: Path) -> str:
    return path.read_text(errors="replace")


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(source(path))


def _strings(path: Path) -> set[str]:
    """The `FABRIC_*` names in a module's string literals (not its identifiers)."""
    return {
        name
        for node in ast.walk(tree(path))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        for name in VARIABLE.findall(node.value)
    }


def test_every_variable_the_code_reads_is_documented() -> None:
    read = {
        name: path
        for folder in PRODUCT
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "FABRIC_" in source(path)
        for name in _strings(path)
    }
    page = CONFIGURATION.read_text()
    missing = {name: str(path.relative_to(ROOT)) for name, path in read.items() if name not in page}
    assert missing == {}, f"document these in {CONFIGURATION.name}"


def test_every_variable_documented_exists() -> None:
    texts = [
        source(path)
        for folder in READERS
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and path.suffix in {".py", ""} and path != Path(__file__)
    ]
    settings = set(documented_settings())
    listed = set(VARIABLE.findall(CONFIGURATION.read_text())) - settings
    unknown = {name for name in listed if not any(name in text for text in texts)}
    assert unknown == set()


def _workers(count: int, resources: dict[str, float]) -> str:
    each = ", ".join(f"{name}={amount:g}" for name, amount in resources.items())
    return f"{count} \u00d7 {each}" if count else "\u2014"


def test_the_template_table_lists_the_built_in_templates() -> None:
    """Its rows, in `fabric template list`'s order, as the templates describe themselves."""
    expected = [
        [
            f"`{found.template.name}`",
            found.template.group,
            found.template.description,
            ", ".join(f"`{name}`" for name in found.template.outputs),
            _workers(found.template.workers, dict(found.template.worker_resources)),
        ]
        for found in builtin.list_all()
    ]
    assert table(TEMPLATES, "## Built-in templates") == expected


def _defines(tree: ast.Module, dotted: str) -> bool:
    """Whether the module defines `name` (or `Class.name`) at its top level."""
    body: list[ast.stmt] = tree.body
    for part in dotted.split("."):
        found = None
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            else:
                names = []
            if part in names:
                found = node
        if found is None:
            return False
        body = getattr(found, "body", [])
    return True


def places() -> list[tuple[str, str, str]]:
    """(rule, file, name) for every name in the map's "Where each rule lives" table."""
    found = []
    for rule, where in table(ARCHITECTURE, "## Where each rule lives"):
        path = None
        for token in ticked(where):
            if token.endswith(".py"):
                path = token
            else:
                assert path is not None, f"{rule!r}: {token!r} names no file before it"
                found.append((rule, path, token))
    return found


@pytest.mark.parametrize(("rule", "path", "name"), places(), ids=lambda v: v[:40])
def test_the_map_points_at_rules_that_exist(rule: str, path: str, name: str) -> None:
    file = ROOT / path
    assert file.is_file(), f"{rule!r}: no file {path}"
    assert _defines(tree(file), name), f"{rule!r}: {path} defines no {name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_the_files_a_page_names_exist(page: Path) -> None:
    named = {
        token
        for token in ticked(page.read_text())
        if REPO_PATH.match(token) and not re.search(r"[A-Z]{2,}", token)
    }
    assert {token for token in named if not (ROOT / token).exists()} == set()


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_links_stay_inside_the_repository(page: Path) -> None:
    text = page.read_text()
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text)]
    local = [t for t in targets if t and not re.match(r"^[a-z]+:", t)]
    outside = [t for t in local if not (page.parent / t).resolve().is_relative_to(ROOT)]
    missing = [t for t in local if not (page.parent / t).exists()]
    assert (outside, missing) == ([], [])
    assert "../shared" not in text


def test_the_readme_commands_exist() -> None:
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    commands = set(re.findall(r"^make ([\w-]+)", (ROOT / "README.md").read_text(), re.M))
    assert {"demo", "test"} <= commands <= targets
