"""What a job left in its run folder: the outputs manifest, the metrics it reported, files.

Templates write these through `fabric.runtime`; pipelines, the CLI and the UI read them here,
as members of the job's project. Hidden files (the job's token among them) are never served.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from fabric import runtime, storage
from fabric.config import Settings
from fabric.errors import NotFound
from fabric.services import jobs
from fabric.services.actor import Actor


@dataclass(frozen=True)
class Results:
    outputs: dict[str, Any]
    metrics: list[dict[str, Any]]


def _run_dir(session: Session, settings: Settings, actor: Actor, project: str, job_id: int) -> Path:
    job = jobs.get(session, actor, project, job_id)
    return storage.run_dir(settings, project, job.id)


def results(
    session: Session, settings: Settings, actor: Actor, project: str, job_id: int
) -> Results:
    """The job's outputs and metrics so far; both empty before it wrote any."""
    folder = _run_dir(session, settings, actor, project, job_id)
    return Results(runtime.read_outputs(folder), runtime.read_metrics(folder))


def file(
    session: Session, settings: Settings, actor: Actor, project: str, job_id: int, path: str
) -> Path:
    """A file of the job's run folder by its relative path (e.g. an image an output names)."""
    folder = _run_dir(session, settings, actor, project, job_id).resolve()
    parts = Path(path).parts
    found = (folder / path).resolve()
    if (
        not parts
        or any(part.startswith(".") for part in parts)
        or not found.is_relative_to(folder)
        or not found.is_file()
    ):
        raise NotFound(f"job {job_id} has no file {path!r}")
    return found
