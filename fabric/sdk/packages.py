"""A working directory zipped for upload, named after its content.

The name is a digest of the files' paths and bytes, so an unchanged directory keeps its
name and is not uploaded twice. What git ignores (the top-level `.gitignore`), what is
always noise (virtual environments, caches, `.git`) and what the caller excludes stays out.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pathspec

ALWAYS_EXCLUDED = [
    ".git/",
    ".venv/",
    "venv/",
    "__pycache__/",
    "*.pyc",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".ipynb_checkpoints/",
    "node_modules/",
]


def _files(directory: Path, excludes: list[str]) -> Iterator[Path]:
    patterns = [*ALWAYS_EXCLUDED, *excludes]
    gitignore = directory / ".gitignore"
    if gitignore.is_file():
        patterns += gitignore.read_text().splitlines()
    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory).as_posix()
        if path.is_file() and not spec.match_file(relative):
            yield path


def package(directory: Path, target_folder: Path, excludes: list[str] | None = None) -> Path:
    """Zip `directory` (its files at the archive's top) into `target_folder`; the zip's path."""
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a directory")
    files = list(_files(directory, excludes or []))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    target = target_folder / f"_fabric_pkg_{digest.hexdigest()[:32]}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(directory).as_posix())
    return target
