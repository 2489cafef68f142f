"""Code packages: a working directory zipped for upload, and the project's packages on the
server, which jobs and templates name as `gcs://NAME`.

A zip's name is a digest of the files' paths and bytes, so an unchanged directory keeps its
name and is not uploaded twice. What git ignores (the top-level `.gitignore`), what is
always noise (virtual environments, caches, `.git`) and what the caller excludes stays out.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pathspec

from fabric.sdk.transport import ApiError, Transport, part

UPLOAD_CHUNK = 1 << 20

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


class PackagesApi(Transport):
    def _package(self, project: str, name: str) -> str:
        return f"/api/v1/projects/{part(project)}/packages/{part(name)}"

    def has_package(self, project: str, name: str) -> bool:
        try:
            self._send("GET", self._package(project, name))
        except ApiError as exc:
            if exc.status_code == 404:
                return False
            raise
        return True

    def upload_package(
        self, project: str, path: Path, progress: Callable[[int], None] | None = None
    ) -> str:
        """Upload a zip as one of the project's packages, streamed; jobs name it `gcs://NAME`.

        `progress` hears how many bytes each chunk sent.
        """

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(UPLOAD_CHUNK):
                    yield chunk
                    if progress:
                        progress(len(chunk))

        headers = {"Content-Length": str(path.stat().st_size)}
        self._send(
            "PUT",
            self._package(project, path.name),
            content=chunks(),
            headers=headers,
            timeout=self._stream_timeout,
        )
        return f"gcs://{path.name}"
