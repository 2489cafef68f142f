"""The model registry's files: a folder per version, `models/NAME/VERSION/` in the project.

The database holds the registry; these folders hold what jobs and Serve replicas read, since
they never reach the database: a version's copy of the model and its `manifest.json`, and
`models/NAME/aliases.json` (alias to version), which the server rewrites whenever an alias
moves. Both the `model-register` job and the server register through `write_version`, so a
version looks the same whichever way it came; version numbers are claimed by making the
folder, so two registrations at once never take the same one. Light at import.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fabric.runtime import llm_files
from fabric.runtime.model_files import ALIASES, MANIFEST, REGISTERED, ModelError, Source, locate

# The job template that registers versions; the server enters what it wrote when it succeeds.
REGISTER_TEMPLATE = "model-register"


def checksum(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files (each one's relative path and content)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def claim_version(folder: Path) -> tuple[int, Path]:
    """The next version number and its new folder, made here so no one else takes it."""
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        taken = [int(p.name) for p in folder.iterdir() if p.name.isdigit()]
        version = max(taken, default=0) + 1
        try:
            (folder / str(version)).mkdir()
        except FileExistsError:
            continue
        return version, folder / str(version)


def signature(features: list[str] | None, classes: list[Any] | None) -> dict[str, Any]:
    """What the model reads and answers, from what its run recorded."""
    inputs = [{"name": name, "type": "number"} for name in features] if features else None
    output: dict[str, Any] = {"type": "class", "classes": classes} if classes else {}
    return {"inputs": inputs, "output": output or None}


def _run_params(source: Source) -> dict[str, Any] | None:
    path = source.run / "params.json" if source.run else None
    return json.loads(path.read_text()) if path and path.is_file() else None


def write_version(
    source: Source,
    models_dir: Path,
    name: str,
    *,
    project: str,
    description: str = "",
    tags: dict[str, str] | None = None,
    registered_by_job: int | None = None,
) -> dict[str, Any]:
    """Copy the model into the next version's folder of `name` and write its manifest."""
    version, folder = claim_version(models_dir / name)
    target = folder / source.uri.name
    if source.uri.is_dir():
        shutil.copytree(source.uri, target)
    else:
        shutil.copy2(source.uri, target)
    params = _run_params(source)
    manifest = {
        "name": name,
        "version": version,
        "framework": source.framework,
        "artifact": target.name,
        "sha256": checksum(target),
        "metrics": source.outputs.get("metrics", {}),
        "features": source.outputs.get("features"),
        "signature": signature(source.outputs.get("features"), source.outputs.get("classes")),
        "params": params,
        "entry": source.outputs.get("entry"),
        # A lora adapter's base: the llm version it adapts, {"model": NAME, "version": N}.
        "base": source.outputs.get("base"),
        "source": {
            "uri": str(source.uri),
            "run": str(source.run) if source.run else None,
            "job": source.job,
            "dataset": (params or {}).get("dataset"),
        },
        "registered_by_job": registered_by_job,
        "project": project,
        "created_at": datetime.fromtimestamp(time.time(), UTC).isoformat(),
        "description": description,
        "tags": tags or {},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST).read_text())


def base_of(models_dir: Path, reference: str | dict[str, Any]) -> dict[str, Any]:
    """A lora adapter's base as its manifest records it, `{"model": NAME, "version": N}`: the
    registered llm version that `reference` names (NAME@VERSION, NAME@ALIAS or NAME, the
    newest; or a manifest's own record), pinned to its number, since aliases move.
    ModelError when there is none."""
    if isinstance(reference, dict):
        reference = f"{reference.get('model')}@{reference.get('version')}"
    folder = locate(models_dir, reference.removeprefix(REGISTERED))
    manifest = read_manifest(folder)
    if manifest.get("framework") != llm_files.LLM:
        raise ModelError(
            f"base {reference!r}: version {manifest['version']} of {manifest['name']!r} is "
            f"{manifest.get('framework')}, not llm; a lora adapter adapts an llm version"
        )
    return {"model": manifest["name"], "version": int(manifest["version"])}


def write_aliases(models_dir: Path, name: str, aliases: dict[str, int]) -> None:
    """Replace the model's alias file at once, so a reader never sees half of it."""
    folder = models_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / f".{ALIASES}.{os.getpid()}"
    scratch.write_text(json.dumps(aliases, indent=2, sort_keys=True))
    scratch.replace(folder / ALIASES)


def registry_of(artifact: Path) -> Path:
    """The project's registry folder (`models/`) that a version's artifact lies in:
    `models/NAME/VERSION/ARTIFACT`."""
    return artifact.parents[2]


def adapter_for(models_dir: Path, reference: str, base: dict[str, Any]) -> Path:
    """The folder of the lora adapter `reference` names (NAME, NAME@VERSION, NAME@ALIAS) that
    adapts `base` ({"model", "version"}): what an llm endpoint of that base loads when a call
    names the adapter. ModelError when there is none, saying why."""
    folder = locate(models_dir, reference)
    manifest = read_manifest(folder)
    label = f"{manifest['name']} version {manifest['version']}"
    if manifest.get("framework") != llm_files.LORA:
        raise ModelError(f"{label} is {manifest.get('framework')}, not a lora adapter")
    if manifest.get("base") != base:
        theirs = manifest.get("base") or {}
        raise ModelError(
            f"{label} adapts {theirs.get('model')}@{theirs.get('version')}, not "
            f"{base['model']}@{base['version']}, which this endpoint serves"
        )
    return folder / manifest["artifact"]
