"""`model-download`: fetch a model from the Hugging Face hub, by id and revision, into the
project's storage, ready for `fabric model register ... --framework llm`.

The hub is asked with `huggingface_hub.snapshot_download`; a private or gated model needs a
token, which the job reads from `HF_TOKEN` in its environment (`fabric job submit ...
--env HF_TOKEN=hf_...`: Fabric has no project secrets yet). A cluster that reaches no hub can
still use the template on a folder it does reach: a local path or a `file://` URL is copied
the same way. Runs in the LLM environment, where huggingface_hub is installed.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, Field

from fabric import runtime
from fabric.runtime import llm_files

NAME = "model-download"
TOKEN_VARIABLE = "HF_TOKEN"
DEFAULT_ENDPOINT = "https://huggingface.co"
# Where downloads land in the project's storage: hub/ORG--NAME/REVISION (a copy: hub/NAME).
FOLDER = "hub"


class Params(BaseModel):
    model: str = Field(
        min_length=1,
        max_length=500,
        description="a Hugging Face hub id (ORG/NAME, e.g. Qwen/Qwen2.5-0.5B-Instruct), or a "
        "local folder or file:// URL to copy instead",
    )
    revision: str = Field(
        default="main",
        min_length=1,
        max_length=200,
        description="a branch, tag or commit of the hub's repository",
    )
    allow_patterns: list[str] = Field(
        default_factory=list,
        description='only the files matching these glob patterns, e.g. ["*.json", '
        '"*.safetensors"]; empty: every file',
    )
    ignore_patterns: list[str] = Field(
        default_factory=list, description='files to leave out, e.g. ["*.bin", "original/*"]'
    )
    target: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$",
        description="the folder in the project's storage to fill (emptied first); by default "
        "hub/ORG--NAME/REVISION, or hub/NAME for a folder copied",
    )
    endpoint: str | None = Field(
        default=None,
        description="the hub's address, for a mirror; by default HF_ENDPOINT or huggingface.co",
    )


class Unreachable(Exception):
    """The hub could not be asked; the message says where and what to do instead."""


def local_source(model: str) -> Path | None:
    """The folder a `file://` URL or a path names, or None for a hub id."""
    if model.startswith("file://"):
        return Path(unquote(urlparse(model).path))
    if model.startswith(("/", "./", "../", "~")) or Path(model).expanduser().is_dir():
        return Path(model).expanduser()
    return None


def _target(params: Params, source: Path | None) -> Path:
    """The folder to fill: the one asked for, hub/ORG--NAME/REVISION for a hub model, or
    hub/NAME for a folder copied."""
    if params.target:
        return runtime.project_dir() / params.target
    if source is not None:
        return runtime.project_dir() / FOLDER / (source.resolve().name or "model")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "--", params.model.strip("/"))
    revision = re.sub(r"[^A-Za-z0-9_.-]+", "-", params.revision)
    return runtime.project_dir() / FOLDER / name / revision


def _empty(target: Path) -> None:
    """Make the target an empty folder: a download under hub/ replaces the one before it, but a
    folder of the project's named as the target is never emptied."""
    project = runtime.project_dir().resolve()
    resolved = target.resolve()
    if resolved == project or not resolved.is_relative_to(project):
        raise SystemExit(f"{NAME}: the target must be a folder inside the project's storage")
    if target.is_dir() and any(target.iterdir()):
        if not resolved.is_relative_to(project / FOLDER):
            raise SystemExit(f"{NAME}: {target} already holds files: name another target")
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)


def _wanted(relative: str, params: Params) -> bool:
    allowed = not params.allow_patterns or any(
        fnmatch.fnmatch(relative, pattern) for pattern in params.allow_patterns
    )
    return allowed and not any(
        fnmatch.fnmatch(relative, pattern) for pattern in params.ignore_patterns
    )


def copy_local(source: Path, target: Path, params: Params) -> None:
    if not source.is_dir():
        raise SystemExit(f"{NAME}: no folder at {source} to copy")
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if path.is_file() and _wanted(relative, params):
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)


def download(params: Params, target: Path) -> None:
    """Fetch the repository's snapshot into `target`."""
    # In the LLM environment (.venv-llm), not the server's: nothing here for pyright to read.
    from huggingface_hub import snapshot_download  # pyright: ignore[reportMissingImports]
    from huggingface_hub.errors import (  # pyright: ignore[reportMissingImports]
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = params.endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    token = os.environ.get(TOKEN_VARIABLE) or None
    where = f"{params.model}@{params.revision}"
    try:
        snapshot_download(
            repo_id=params.model,
            revision=params.revision,
            local_dir=target,
            allow_patterns=params.allow_patterns or None,
            ignore_patterns=params.ignore_patterns or None,
            endpoint=endpoint,
            token=token,
        )
    except GatedRepoError:
        raise SystemExit(
            f"{NAME}: {params.model} is gated on the hub: accept its terms there and give the "
            f"job a token of that account ({TOKEN_VARIABLE})"
        ) from None
    except RepositoryNotFoundError:
        hint = "" if token else f", or private: give the job a token ({TOKEN_VARIABLE})"
        raise SystemExit(
            f"{NAME}: the hub at {endpoint} has no model {params.model}{hint}"
        ) from None
    except RevisionNotFoundError:
        raise SystemExit(f"{NAME}: {params.model} has no revision {params.revision!r}") from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        # No connection (no network, DNS, a proxy, HF_HUB_OFFLINE): huggingface_hub then looks
        # in its cache, finds nothing, and says so at length; the cause says it in a line.
        cause = exc.__cause__ or exc
        raise Unreachable(
            f"cannot reach the Hugging Face hub at {endpoint} to fetch {where} "
            f"({type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else '-'}). "
            "Where this cluster has no internet access, download the model elsewhere and give "
            "its folder instead (a path or file:// URL the cluster reaches), or name a mirror "
            "with endpoint"
        ) from None
    except HfHubHTTPError as exc:
        raise SystemExit(f"{NAME}: the hub at {endpoint} refused {where}: {exc}") from None


def run(params: Params) -> dict[str, Any]:
    source = local_source(params.model)
    target = _target(params, source)
    _empty(target)
    try:
        if source is not None:
            copy_local(source, target, params)
        else:
            download(params, target)
    except Unreachable as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise SystemExit(f"{NAME}: {exc}") from None
    # huggingface_hub's bookkeeping of what it fetched: not part of the model.
    shutil.rmtree(target / ".cache", ignore_errors=True)
    files = [path for path in target.rglob("*") if path.is_file()]
    if not files:
        raise SystemExit(f"{NAME}: nothing was fetched from {params.model} (check the patterns)")
    framework = llm_files.looks_like(target)
    size = sum(path.stat().st_size for path in files)
    print(f"{NAME}: {len(files)} files, {size} bytes, in {target}", flush=True)
    if framework is None:
        print(f"{NAME}: this is not a Hugging Face model folder vLLM serves", flush=True)
    return {
        "model_uri": str(target),
        **({"framework": framework} if framework else {}),
        "source": params.model if source is None else str(source),
        "revision": params.revision if source is None else None,
        "files": len(files),
        "bytes": size,
    }


TEMPLATE = runtime.Template(
    name=NAME,
    group="llm",
    description="Fetch a model from the Hugging Face hub by id and revision (a token from "
    "HF_TOKEN for private or gated ones), or copy a local folder, into the project's storage, "
    "ready to register as an llm model.",
    params=Params,
    run=run,
    resources={"cpu": 1},
    environment=runtime.LLM_ENVIRONMENT,
    outputs={
        "model_uri": "the downloaded folder in the project's storage",
        "framework": "llm or lora, when the folder is one",
        "source": "the hub id or the folder it came from",
        "revision": "the hub revision asked for",
        "files": "how many files it holds",
        "bytes": "their size",
    },
)

if __name__ == "__main__":
    TEMPLATE.main()
