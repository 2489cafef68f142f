"""`model-register`: record a saved model as the next version of a named model in the project.

The job copies the model into `models/NAME/VERSION/` with its `manifest.json` (framework,
metrics, signature, lineage, checksum, tags; see `fabric.runtime.model_store`), and when it succeeds
the server enters that version into the project's registry, where aliases and endpoints
find it. Version numbers count up per name; two registrations at once each claim their own
folder.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from fabric import runtime
from fabric.runtime import llm_files, model_files, model_store, names

NAME = model_store.REGISTER_TEMPLATE


class Params(BaseModel):
    model: str = Field(
        description="the model: a job id or run folder of the job that saved it (its metrics "
        "and features come along), or the model's own file or folder"
    )
    name: str = Field(
        pattern=names.NAME_PATTERN,
        description="the registered model's name; each registration adds a version to it",
    )
    framework: model_files.Framework | None = Field(
        default=None,
        description="how the model was saved; by default what its run recorded, or guessed "
        "from the file name",
    )
    base: str | None = Field(
        default=None,
        description="a lora adapter's base: the registered llm version it adapts, as "
        "MODEL@VERSION (an alias is pinned to its version); by default the `base` its run "
        "recorded",
    )
    description: str = Field(default="", max_length=2000, description="what this version is")
    tags: dict[str, str] = Field(
        default_factory=dict, description='labels to find it by, e.g. {"stage": "staging"}'
    )


def run(params: Params) -> dict[str, Any]:
    models_dir = runtime.project_dir() / "models"
    try:
        source = model_files.resolve(params.model, params.framework)
        # A fine-tuning run records its adapter's base among its outputs.
        base = params.base or source.outputs.get("base")
        llm_files.check_base(source.framework, base)
        if base is not None:
            source.outputs["base"] = model_store.base_of(models_dir, base)
    except (model_files.ModelError, llm_files.FolderError) as exc:
        raise SystemExit(f"{NAME}: {exc}") from None
    manifest = model_store.write_version(
        source,
        models_dir,
        params.name,
        project=runtime.project(),
        description=params.description,
        tags=params.tags,
        registered_by_job=runtime.job_id(),
    )
    version = manifest["version"]
    folder = runtime.project_dir() / "models" / params.name / str(version)
    target = folder / manifest["artifact"]
    print(f"{NAME}: {params.name} version {version} ({source.framework}) in {folder}", flush=True)
    return {
        "model_name": params.name,
        "model_version": version,
        "model_uri": str(target),
        "framework": source.framework,
        "manifest_uri": str(folder / model_files.MANIFEST),
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
