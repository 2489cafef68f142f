"""`model-register`: record a saved model as the next version of a named model in the project.

Until the platform's model registry exists, the record is a folder per version,
`models/NAME/VERSION/` in the project's storage, holding a copy of the model and
`manifest.json` (framework, metrics, the job that made it, checksum, time, tags) for the
registry to import. Version numbers count up per name; two registrations at once each claim
their own folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from fabric import runtime
from jobs import _models

NAME = "model-register"
MANIFEST = "manifest.json"
# A run's parameters, where the run recorded them beside its outputs.


class Params(BaseModel):
    model: str = Field(
        description="the model: a job id or run folder of the job that saved it (its metrics "
        "and features come along), or the model's own file or folder"
    )
    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
        description="the registered model's name; each registration adds a version to it",
    )
    framework: _models.Framework | None = Field(
        default=None,
        description="how the model was saved; by default what its run recorded, or guessed "
        "from the file name",
    )
    description: str = Field(default="", max_length=2000, description="what this version is")
    tags: dict[str, str] = Field(
        default_factory=dict, description='labels to find it by, e.g. {"stage": "staging"}'
    )


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


def _claim(folder: Path) -> tuple[int, Path]:
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


def _run_params(source: _models.Source) -> dict[str, Any] | None:
    path = source.run / runtime.PARAMS_FILE if source.run else None
    return json.loads(path.read_text()) if path and path.is_file() else None


def run(params: Params) -> dict[str, Any]:
    try:
        source = _models.resolve(params.model, params.framework)
    except _models.ModelError as exc:
        raise SystemExit(f"{NAME}: {exc}") from None
    version, folder = _claim(runtime.project_dir() / "models" / params.name)
    target = folder / source.uri.name
    if source.uri.is_dir():
        shutil.copytree(source.uri, target)
    else:
        shutil.copy2(source.uri, target)
    manifest = {
        "name": params.name,
        "version": version,
        "framework": source.framework,
        "artifact": target.name,
        "sha256": checksum(target),
        "metrics": source.outputs.get("metrics", {}),
        "features": source.outputs.get("features"),
        "params": _run_params(source),
        "source": {
            "uri": str(source.uri),
            "run": str(source.run) if source.run else None,
            "job": source.job,
        },
        "registered_by_job": runtime.job_id(),
        "project": runtime.project(),
        "created_at": datetime.fromtimestamp(time.time(), UTC).isoformat(),
        "description": params.description,
        "tags": params.tags,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    print(f"{NAME}: {params.name} version {version} ({source.framework}) in {folder}", flush=True)
    return {
        "model_name": params.name,
        "model_version": version,
        "model_uri": str(target),
        "framework": source.framework,
        "manifest_uri": str(folder / MANIFEST),
        "sha256": manifest["sha256"],
    }


TEMPLATE = runtime.Template(
    name=NAME,
    group="models",
    description="Register a saved model as the next version of a named model in the project: "
    "a copy of the model and a manifest of its framework, metrics, source job, checksum, time "
    "and tags, under models/NAME/VERSION/.",
    params=Params,
    run=run,
    resources={"cpu": 0.25},
    outputs={
        "model_name": "the registered model's name",
        "model_version": "the version this registration made (1, 2, ...)",
        "model_uri": "the registered copy of the model",
        "framework": "how the model was saved",
        "manifest_uri": "the version's manifest.json",
        "sha256": "the checksum of the registered copy",
    },
)

if __name__ == "__main__":
    TEMPLATE.main()
